/**
 * Whole-file verification: every byte of a .tok checked (header, every chunk's CRC, fields and
 * codes, the index, the footer, nothing after it) without keeping the tokens. What `tokstream info`
 * reports and what the HTTP decode route checks before it answers.
 */
import { unpackChunk, type ChunkInfo } from './chunk.js';
import { TokFormatError } from './errors.js';
import { TokParser } from './parser.js';
import type { TokHeader, TokReadOptions } from './types.js';

export interface TokVerifyOptions extends TokReadOptions {
  /** Called once the header is read and checked, before any chunk: a caller's own checks (model, size) may throw. */
  onHeader?: (header: TokHeader) => void;
  /** Called for every verified chunk; may throw (e.g. a duration limit). */
  onChunk?: (chunk: ChunkInfo) => void;
}

export interface TokVerification {
  header: TokHeader;
  /** true when every byte was verified: all chunks, the index, the footer, and nothing after it */
  complete: boolean;
  /** frames in the verified chunks (every frame of a complete file) */
  totalFrames: number;
  chunks: number;
  /** samples at header.originalSampleRate, from the verified index; null when unknown or not verified */
  originalLength: number | null;
  /** what is wrong, when allowTruncated / allowDamaged asked for a report instead of an error */
  problem?: TokFormatError;
}

/**
 * Reads a whole .tok and checks everything. Throws TokFormatError at the first problem, unless
 * allowTruncated / allowDamaged ask for a report (then `problem` says what and where, and the counts
 * cover the intact prefix; a file whose trailer verified but that has bytes after it stays
 * `complete: false` with `trailing_data`). Header damage always throws.
 */
export async function verifyTok(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: TokVerifyOptions = {}): Promise<TokVerification> {
  const parser = new TokParser(opts);
  let header: TokHeader | null = null;
  let chunks = 0;
  let frames = 0;
  let scratch = new Int32Array(0);
  // Returns the result at the end event, null while more bytes are needed.
  const drain = (): TokVerification | null => {
    for (let ev = parser.next(); ev !== null; ev = parser.next()) {
      if (ev.type === 'header') {
        header = ev.header;
        opts.onHeader?.(header);
      } else if (ev.type === 'chunk') {
        const h = header as TokHeader;
        const n = h.numCodebooks * ev.info.numFrames;
        if (scratch.length < n) scratch = new Int32Array(n);
        try {
          unpackChunk(h, ev.block, ev.info, scratch, { rows: h.numCodebooks, cols: ev.info.numFrames, stride: ev.info.numFrames, col: 0 });
        } catch (err) {
          if (!(err instanceof TokFormatError)) throw err;
          return finish(parser.damage(err, ev.info.firstFrame));
        }
        chunks++;
        frames += ev.info.numFrames;
        opts.onChunk?.(ev.info);
      } else {
        return finish(ev);
      }
    }
    return null;
  };
  const finish = (end: { complete: boolean; totalFrames: number; originalLength: number | null; problem?: TokFormatError }): TokVerification => ({
    header: header as TokHeader,
    complete: end.complete && !end.problem,
    totalFrames: Math.min(frames, end.totalFrames),
    chunks,
    originalLength: end.complete && !end.problem ? end.originalLength : null,
    ...(end.problem ? { problem: end.problem } : {}),
  });
  for await (const piece of source) {
    parser.feed(piece);
    const done = drain();
    if (done) return done;
  }
  parser.finish();
  return drain() as TokVerification;
}
