/** The public shapes of the .tok API: header fields, reader limits and options, read results and stream events. */
import type { TokenBlock } from '../pure/types.js';
import type { TokFormatError } from './errors.js';

export interface TokHeaderFields {
  modelName: string;
  /** sha256 of the model (64 hex digits) as the runtime defines it; stored as 32 raw bytes. */
  modelSha256: string;
  /** model sample rate (Hz) */
  sampleRate: number;
  /** samples per token frame at sampleRate */
  hopLength: number;
  /** codebooks stored in this file (a leading subset of the model's) */
  numCodebooks: number;
  codebookSize: number;
  /** rate (Hz) of the audio before resampling to the model rate; originalLength counts samples at this rate */
  originalSampleRate: number;
  /** small free JSON object (at most MAX_METADATA_BYTES as UTF-8 JSON) */
  metadata?: Record<string, unknown>;
  /** frames per chunk (all chunks but a flushed or last one hold exactly this many) */
  framesPerChunk?: number;
}

export interface TokHeader extends Required<TokHeaderFields> {
  version: { major: number; minor: number };
  bitsPerCode: number;
  /** bytes from the start of the file to the first chunk */
  headerLength: number;
}

export interface TokLimits {
  /** largest header body accepted (model name, metadata and future fields) */
  maxHeaderBytes: number;
  /** largest packed payload of one chunk, checked against the header before any chunk is buffered */
  maxChunkBytes: number;
  /** most codes readTok will materialise at once (numCodebooks * frames) */
  maxTotalCodes: number;
}

export const DEFAULT_TOK_LIMITS: Readonly<TokLimits> = {
  maxHeaderBytes: 1 << 20,
  maxChunkBytes: 64 << 20,
  maxTotalCodes: 1 << 28,
};

export interface TokReadOptions {
  /** A file that ends early (no footer: cut off, or still being written) yields its intact chunks, complete=false. */
  allowTruncated?: boolean;
  /** Also stop at the first corrupt chunk or trailer instead of throwing (implies allowTruncated). Header damage always throws. */
  allowDamaged?: boolean;
  limits?: Partial<TokLimits>;
}

export function resolveLimits(opts: TokReadOptions): TokLimits {
  return { ...DEFAULT_TOK_LIMITS, ...opts.limits };
}

export interface TokReadResult {
  header: TokHeader;
  tokens: TokenBlock;
  /** true when the trailer was found and verified, i.e. every frame the writer wrote is in `tokens` */
  complete: boolean;
  /** samples at header.originalSampleRate; null when unknown (no trailer, or the writer did not know) */
  originalLength: number | null;
  /** why the file is incomplete or damaged, when allowTruncated / allowDamaged swallowed it */
  problem?: TokFormatError;
}

export type TokStreamEvent =
  | { type: 'header'; header: TokHeader }
  | { type: 'tokens'; firstFrame: number; tokens: TokenBlock }
  | { type: 'end'; complete: boolean; totalFrames: number; originalLength: number | null; problem?: TokFormatError };
