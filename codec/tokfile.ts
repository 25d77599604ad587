/**
 * The .tok token container (byte layout: docs/tok-format.md).
 *
 *   header | chunk* | index | footer
 *
 * Every byte sits under a CRC-32, so any single-byte corruption is detected; chunks hold a bounded
 * number of frames, so a writer streams tokens as they arrive and a reader seeks through the
 * footer's index (or, when a stream was cut, by walking chunk headers forward).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { bitsPerCode, packCodes, packedLength, unpackCodes, type Window } from './bitpack.js';
import { crc32 } from './crc32.js';
import { CodecError } from './errors.js';
import type { TokenBlock } from './types.js';

export const TOK_MAGIC = Uint8Array.of(0x89, 0x54, 0x4f, 0x4b, 0x0d, 0x0a, 0x1a, 0x0a); // "\x89TOK\r\n\x1a\n"
export const TOK_VERSION = { major: 1, minor: 0 } as const;
export const DEFAULT_FRAMES_PER_CHUNK = 256;
export const MAX_FRAMES_PER_CHUNK = 65536;
export const MAX_METADATA_BYTES = 65536;
const MAX_U32 = 0xffffffff;
const UNKNOWN_LENGTH = 0xffffffffffffffffn;

const tagValue = (s: string): number => new DataView(new TextEncoder().encode(s).buffer).getUint32(0, true);
const TAG_CHUNK = tagValue('TCHK');
const TAG_INDEX = tagValue('TIDX');
const TAG_END = tagValue('TEND');

const PREFIX_BYTES = 16; // magic, version, reserved, header body length
const HEADER_FIXED_BODY = 59; // body bytes besides the model name and the metadata
const CHUNK_PREFIX = 16; // tag, body length, first frame, frame count
const CHUNK_OVERHEAD = CHUNK_PREFIX + 4;
const INDEX_PREFIX = 24; // tag, body length, total frames, chunk count, original length
const INDEX_ENTRY = 16;
const FOOTER_BYTES = 16;

export type TokFormatErrorCode =
  | 'bad_magic'
  | 'unsupported_version'
  | 'header_crc'
  | 'bad_header'
  | 'chunk_crc'
  | 'bad_chunk'
  | 'code_out_of_range'
  | 'index_crc'
  | 'bad_index'
  | 'footer_crc'
  | 'bad_footer'
  | 'truncated'
  | 'trailing_data'
  | 'limit_exceeded';

/** A .tok file that is not what it claims to be: corrupted, cut short, or beyond the reader's limits. */
export class TokFormatError extends Error {
  readonly code: TokFormatErrorCode;
  /** Byte offset in the file where the problem was found, when one applies. */
  readonly offset: number | null;
  constructor(code: TokFormatErrorCode, message: string, offset: number | null = null) {
    super(offset === null ? `.tok ${code}: ${message}` : `.tok ${code} at byte ${offset}: ${message}`);
    this.name = 'TokFormatError';
    this.code = code;
    this.offset = offset;
  }
}

/** Tokens decoded with a model other than the one that wrote them. */
export class TokModelMismatchError extends CodecError {
  readonly mismatches: string[];
  constructor(message: string, mismatches: string[]) {
    super('model_mismatch', message);
    this.name = 'TokModelMismatchError';
    this.mismatches = mismatches;
  }
}

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

interface ChunkInfo {
  offset: number;
  firstFrame: number;
  numFrames: number;
}

// ---------------------------------------------------------------------------------------------
// Header

const invalid = (message: string): CodecError => new CodecError('invalid_argument', `.tok header: ${message}`);

function checkUint(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

function maxChunkPayload(h: Pick<TokHeader, 'framesPerChunk' | 'numCodebooks' | 'bitsPerCode'>): number {
  return packedLength(h.framesPerChunk * h.numCodebooks, h.bitsPerCode);
}

/** Validates writer input and fills in defaults. */
function headerFromFields(f: TokHeaderFields): TokHeader {
  if (typeof f.modelName !== 'string') throw invalid('modelName must be a string');
  const nameBytes = new TextEncoder().encode(f.modelName).length;
  if (nameBytes < 1 || nameBytes > 255) throw invalid(`modelName must be 1..255 bytes of UTF-8, got ${nameBytes}`);
  if (typeof f.modelSha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(f.modelSha256)) {
    throw invalid('modelSha256 must be 64 hex digits');
  }
  const metadata = f.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalid('metadata must be a plain JSON object');
  }
  let json: string;
  try {
    json = JSON.stringify(metadata);
  } catch (e) {
    throw invalid(`metadata is not serialisable as JSON (${(e as Error).message})`);
  }
  const metaBytes = new TextEncoder().encode(json).length;
  if (metaBytes > MAX_METADATA_BYTES) throw invalid(`metadata is ${metaBytes} bytes of JSON, limit ${MAX_METADATA_BYTES}`);
  const h: TokHeader = {
    version: { ...TOK_VERSION },
    modelName: f.modelName,
    modelSha256: f.modelSha256.toLowerCase(),
    sampleRate: checkUint('sampleRate', f.sampleRate, 1, MAX_U32),
    hopLength: checkUint('hopLength', f.hopLength, 1, MAX_U32),
    numCodebooks: checkUint('numCodebooks', f.numCodebooks, 1, 0xffff),
    codebookSize: checkUint('codebookSize', f.codebookSize, 2, 2 ** 31),
    originalSampleRate: checkUint('originalSampleRate', f.originalSampleRate, 1, MAX_U32),
    framesPerChunk: checkUint('framesPerChunk', f.framesPerChunk ?? DEFAULT_FRAMES_PER_CHUNK, 1, MAX_FRAMES_PER_CHUNK),
    metadata: JSON.parse(json) as Record<string, unknown>,
    bitsPerCode: 0,
    headerLength: 0,
  };
  h.bitsPerCode = bitsPerCode(h.codebookSize);
  h.headerLength = encodeHeader(h).length;
  if (maxChunkPayload(h) > DEFAULT_TOK_LIMITS.maxChunkBytes) {
    throw invalid(`a chunk of ${h.framesPerChunk} frames x ${h.numCodebooks} codebooks exceeds ${DEFAULT_TOK_LIMITS.maxChunkBytes} bytes; lower framesPerChunk`);
  }
  return h;
}

function encodeHeader(h: TokHeader): Uint8Array {
  const enc = new TextEncoder();
  const name = enc.encode(h.modelName);
  const meta = enc.encode(JSON.stringify(h.metadata));
  const bodyLength = HEADER_FIXED_BODY + name.length + meta.length;
  const out = new Uint8Array(PREFIX_BYTES + bodyLength + 4);
  const dv = view(out);
  out.set(TOK_MAGIC, 0);
  out[8] = h.version.major;
  out[9] = h.version.minor;
  dv.setUint16(10, 0, true);
  dv.setUint32(12, bodyLength, true);
  const b = PREFIX_BYTES;
  dv.setUint32(b + 0, h.sampleRate, true);
  dv.setUint32(b + 4, h.hopLength, true);
  dv.setUint32(b + 8, h.codebookSize, true);
  dv.setUint32(b + 12, h.framesPerChunk, true);
  dv.setUint32(b + 16, h.originalSampleRate, true);
  dv.setUint16(b + 20, h.numCodebooks, true);
  for (let i = 0; i < 32; i++) out[b + 22 + i] = parseInt(h.modelSha256.slice(2 * i, 2 * i + 2), 16);
  out[b + 54] = name.length;
  out.set(name, b + 55);
  dv.setUint32(b + 55 + name.length, meta.length, true);
  out.set(meta, b + 59 + name.length);
  dv.setUint32(out.length - 4, crc32(out, 0, out.length - 4), true);
  return out;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function resolveLimits(opts: TokReadOptions): TokLimits {
  return { ...DEFAULT_TOK_LIMITS, ...opts.limits };
}

/** Checks the magic against however many bytes are there (so a WAV upload fails at once). */
function checkMagic(bytes: Uint8Array): void {
  const n = Math.min(bytes.length, TOK_MAGIC.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== TOK_MAGIC[i]) throw new TokFormatError('bad_magic', 'not a .tok file (magic bytes differ)', 0);
  }
}

/** Total header bytes (prefix, body, CRC), from the 16-byte prefix. */
function headerExtent(prefix: Uint8Array, limits: TokLimits): number {
  checkMagic(prefix);
  if (prefix.length < PREFIX_BYTES) throw new TokFormatError('truncated', `file ends inside the ${PREFIX_BYTES}-byte header prefix`, prefix.length);
  if (prefix[8] !== TOK_VERSION.major) {
    throw new TokFormatError('unsupported_version', `format version ${prefix[8]}.${prefix[9]}; this reader supports ${TOK_VERSION.major}.x`, 8);
  }
  const bodyLength = view(prefix).getUint32(12, true);
  if (bodyLength > limits.maxHeaderBytes) {
    throw new TokFormatError('limit_exceeded', `header body of ${bodyLength} bytes exceeds maxHeaderBytes ${limits.maxHeaderBytes}`, 12);
  }
  return PREFIX_BYTES + bodyLength + 4;
}

function decodeHeader(bytes: Uint8Array, limits: TokLimits): TokHeader {
  const dv = view(bytes);
  const end = bytes.length - 4;
  if (crc32(bytes, 0, end) !== dv.getUint32(end, true)) throw new TokFormatError('header_crc', 'header checksum mismatch', end);
  const bad = (msg: string, at: number): TokFormatError => new TokFormatError('bad_header', msg, at);
  if (dv.getUint16(10, true) !== 0) throw bad('reserved bytes are not zero', 10);
  const b = PREFIX_BYTES;
  const bodyLength = end - b;
  if (bodyLength < HEADER_FIXED_BODY) throw bad(`header body of ${bodyLength} bytes is shorter than ${HEADER_FIXED_BODY}`, 12);
  const nameLength = bytes[b + 54];
  if (HEADER_FIXED_BODY + nameLength > bodyLength) throw bad('model name runs past the header', b + 54);
  const metaLength = dv.getUint32(b + 55 + nameLength, true);
  const used = HEADER_FIXED_BODY + nameLength + metaLength;
  // A later minor version may append fields; a 1.0 header must be exactly what it declares.
  if (used > bodyLength || (bytes[9] === 0 && used !== bodyLength)) throw bad('metadata length disagrees with the header length', b + 55 + nameLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let modelName: string;
  let metadata: unknown;
  try {
    modelName = utf8.decode(bytes.subarray(b + 55, b + 55 + nameLength));
  } catch {
    throw bad('model name is not valid UTF-8', b + 55);
  }
  try {
    metadata = metaLength === 0 ? {} : JSON.parse(utf8.decode(bytes.subarray(b + 59 + nameLength, b + 59 + nameLength + metaLength)));
  } catch {
    throw bad('metadata is not valid UTF-8 JSON', b + 59 + nameLength);
  }
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw bad('metadata is not a JSON object', b + 59 + nameLength);
  let sha = '';
  for (let i = 0; i < 32; i++) sha += bytes[b + 22 + i].toString(16).padStart(2, '0');
  const h: TokHeader = {
    version: { major: bytes[8], minor: bytes[9] },
    modelName,
    modelSha256: sha,
    sampleRate: dv.getUint32(b, true),
    hopLength: dv.getUint32(b + 4, true),
    codebookSize: dv.getUint32(b + 8, true),
    framesPerChunk: dv.getUint32(b + 12, true),
    originalSampleRate: dv.getUint32(b + 16, true),
    numCodebooks: dv.getUint16(b + 20, true),
    metadata: metadata as Record<string, unknown>,
    bitsPerCode: 0,
    headerLength: bytes.length,
  };
  if (modelName.length === 0) throw bad('model name is empty', b + 54);
  for (const [field, at] of [['sampleRate', 0], ['hopLength', 4], ['framesPerChunk', 12], ['originalSampleRate', 16], ['numCodebooks', 20]] as const) {
    if (h[field] === 0) throw bad(`${field} is 0`, b + at);
  }
  if (h.codebookSize < 2 || h.codebookSize > 2 ** 31) throw bad(`codebookSize ${h.codebookSize} is outside [2, 2^31]`, b + 8);
  h.bitsPerCode = bitsPerCode(h.codebookSize);
  if (maxChunkPayload(h) > limits.maxChunkBytes) {
    throw new TokFormatError('limit_exceeded', `chunks of up to ${maxChunkPayload(h)} bytes exceed maxChunkBytes ${limits.maxChunkBytes}`, b + 12);
  }
  return h;
}

/** Parses and checks the header at the start of `buf` (only the header's bytes are needed). */
export function readTokHeader(buf: Uint8Array, opts: Pick<TokReadOptions, 'limits'> = {}): TokHeader {
  const limits = resolveLimits(opts);
  const extent = headerExtent(buf.subarray(0, PREFIX_BYTES), limits);
  if (buf.length < extent) throw new TokFormatError('truncated', `header needs ${extent} bytes, have ${buf.length}`, buf.length);
  return decodeHeader(buf.subarray(0, extent), limits);
}

// ---------------------------------------------------------------------------------------------
// Chunks, index, footer

function chunkBlockLength(h: TokHeader, numFrames: number): number {
  return CHUNK_OVERHEAD + packedLength(numFrames * h.numCodebooks, h.bitsPerCode);
}

/** Bounds a chunk's declared body length before its bytes are awaited or read. */
function checkChunkBodyLength(h: TokHeader, bodyLength: number, offset: number): number {
  if (bodyLength < 9 || bodyLength > 8 + maxChunkPayload(h)) {
    throw new TokFormatError('bad_chunk', `chunk body length ${bodyLength} is impossible for ${h.framesPerChunk}-frame chunks`, offset + 4);
  }
  return bodyLength + 12;
}

/** CRC and structure of one whole chunk block (not yet its codes). */
function verifyChunk(h: TokHeader, block: Uint8Array, offset: number, expectedFirst: number): ChunkInfo {
  const dv = view(block);
  const end = block.length - 4;
  if (dv.getUint32(0, true) !== TAG_CHUNK) throw new TokFormatError('bad_chunk', 'expected a chunk (TCHK)', offset);
  if (crc32(block, 0, end) !== dv.getUint32(end, true)) throw new TokFormatError('chunk_crc', 'chunk checksum mismatch', offset);
  const firstFrame = dv.getUint32(8, true);
  const numFrames = dv.getUint32(12, true);
  if (numFrames < 1 || numFrames > h.framesPerChunk || chunkBlockLength(h, numFrames) !== block.length) {
    throw new TokFormatError('bad_chunk', `chunk of ${numFrames} frames has ${block.length} bytes`, offset + 12);
  }
  if (firstFrame !== expectedFirst) throw new TokFormatError('bad_chunk', `chunk starts at frame ${firstFrame}, expected ${expectedFirst}`, offset + 8);
  if (firstFrame + numFrames > MAX_U32) throw new TokFormatError('bad_chunk', 'frame count exceeds 2^32 - 1', offset + 8);
  return { offset, firstFrame, numFrames };
}

/** Unpacks a verified chunk's codes into `w` of `dst`, checking the codebook range and zero padding. */
function unpackChunk(h: TokHeader, block: Uint8Array, info: ChunkInfo, dst: Int32Array, w: Window): void {
  const max = unpackCodes(block, CHUNK_PREFIX, h.bitsPerCode, dst, w);
  if (max >= h.codebookSize) {
    throw new TokFormatError('code_out_of_range', `code ${max} in a codebook of ${h.codebookSize}`, info.offset + CHUNK_PREFIX);
  }
  const usedBits = (info.numFrames * h.numCodebooks * h.bitsPerCode) % 8;
  if (usedBits !== 0 && block[block.length - 5] >> usedBits !== 0) {
    throw new TokFormatError('bad_chunk', 'padding bits are not zero', info.offset + block.length - 5);
  }
}

interface IndexData {
  totalFrames: number;
  originalLength: number | null;
  entries: ChunkInfo[];
}

function decodeIndex(block: Uint8Array, offset: number): IndexData {
  const dv = view(block);
  const end = block.length - 4;
  if (dv.getUint32(0, true) !== TAG_INDEX) throw new TokFormatError('bad_index', 'expected the index (TIDX)', offset);
  if (crc32(block, 0, end) !== dv.getUint32(end, true)) throw new TokFormatError('index_crc', 'index checksum mismatch', offset);
  const count = dv.getUint32(12, true);
  if (dv.getUint32(4, true) !== 16 + INDEX_ENTRY * count || block.length !== INDEX_PREFIX + INDEX_ENTRY * count + 4) {
    throw new TokFormatError('bad_index', `index length disagrees with its ${count} entries`, offset + 4);
  }
  const rawLength = dv.getBigUint64(16, true);
  if (rawLength !== UNKNOWN_LENGTH && rawLength > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TokFormatError('bad_index', `original length ${rawLength} is out of range`, offset + 16);
  }
  const entries: ChunkInfo[] = [];
  for (let i = 0, p = INDEX_PREFIX; i < count; i++, p += INDEX_ENTRY) {
    const off = dv.getBigUint64(p, true);
    if (off > BigInt(Number.MAX_SAFE_INTEGER)) throw new TokFormatError('bad_index', `chunk offset ${off} is out of range`, offset + p);
    entries.push({ offset: Number(off), firstFrame: dv.getUint32(p + 8, true), numFrames: dv.getUint32(p + 12, true) });
  }
  return {
    totalFrames: dv.getUint32(8, true),
    originalLength: rawLength === UNKNOWN_LENGTH ? null : Number(rawLength),
    entries,
  };
}

/** The index must describe back-to-back chunks from the header to the index itself. */
function checkIndexLayout(h: TokHeader, idx: IndexData, indexOffset: number): void {
  let offset = h.headerLength;
  let frame = 0;
  for (const e of idx.entries) {
    if (e.offset !== offset || e.firstFrame !== frame || e.numFrames < 1 || e.numFrames > h.framesPerChunk) {
      throw new TokFormatError('bad_index', `index entry for the chunk at byte ${offset} (frame ${frame}) is inconsistent`, indexOffset);
    }
    offset += chunkBlockLength(h, e.numFrames);
    frame += e.numFrames;
  }
  if (offset !== indexOffset || frame !== idx.totalFrames) {
    throw new TokFormatError('bad_index', 'index totals disagree with its chunks', indexOffset);
  }
}

function decodeFooter(bytes: Uint8Array, offset: number): number {
  const dv = view(bytes);
  if (dv.getUint32(8, true) !== TAG_END) throw new TokFormatError('bad_footer', 'expected the footer (TEND)', offset + 8);
  if (crc32(bytes, 0, 12) !== dv.getUint32(12, true)) throw new TokFormatError('footer_crc', 'footer checksum mismatch', offset);
  const indexOffset = dv.getBigUint64(0, true);
  if (indexOffset > BigInt(Number.MAX_SAFE_INTEGER)) throw new TokFormatError('bad_footer', 'index offset out of range', offset);
  return Number(indexOffset);
}

// ---------------------------------------------------------------------------------------------
// Sequential parser: one state machine behind readTok (whole buffer) and readTokStream (pieces).

/** Bytes that arrive in pieces; hands out contiguous views, copying only across piece boundaries. */
class ByteQueue {
  private pieces: Uint8Array[] = [];
  private head = 0;
  length = 0;

  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.pieces.push(b);
    this.length += b.length;
  }

  peek(n: number): Uint8Array {
    const first = this.pieces[0];
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    let start = this.head;
    while (filled < n) {
      const take = Math.min(n - filled, this.pieces[i].length - start);
      out.set(this.pieces[i].subarray(start, start + take), filled);
      filled += take;
      i++;
      start = 0;
    }
    return out;
  }

  skip(n: number): void {
    this.length -= n;
    let drop = 0;
    let head = this.head;
    while (n > 0) {
      const left = this.pieces[drop].length - head;
      if (n < left) {
        head += n;
        break;
      }
      n -= left;
      drop++;
      head = 0;
    }
    this.pieces.splice(0, drop);
    this.head = head;
  }
}

type ParseEvent =
  | { type: 'header'; header: TokHeader }
  | { type: 'chunk'; info: ChunkInfo; block: Uint8Array }
  | Extract<TokStreamEvent, { type: 'end' }>;

class TokParser {
  private readonly queue = new ByteQueue();
  private readonly limits: TokLimits;
  private state: 'header' | 'blocks' | 'footer' | 'done' | 'ended' = 'header';
  private eof = false;
  private pos = 0;
  private header: TokHeader | null = null;
  private readonly chunks: ChunkInfo[] = [];
  private frames = 0;
  private index: IndexData | null = null;
  private indexOffset = 0;

  constructor(private readonly opts: TokReadOptions) {
    this.limits = resolveLimits(opts);
  }

  feed(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) throw new CodecError('invalid_argument', '.tok stream pieces must be Uint8Array/Buffer');
    this.queue.push(bytes);
  }

  finish(): void {
    this.eof = true;
  }

  /** Next event, or null when more bytes are needed (or after the end event). */
  next(): ParseEvent | null {
    if (this.state === 'ended') return null;
    try {
      return this.step();
    } catch (e) {
      if (e instanceof TokFormatError) return this.damage(e);
      throw e;
    }
  }

  /**
   * Applies the damage policy: the end event (salvaging what came before), or the error.
   * `framesKept` when a chunk already counted turned out bad on unpacking.
   */
  damage(err: TokFormatError, framesKept = this.frames): Extract<ParseEvent, { type: 'end' }> {
    const salvage = this.header !== null && (this.opts.allowDamaged === true || (err.code === 'truncated' && this.opts.allowTruncated === true));
    const complete = this.state === 'done';
    this.state = 'ended';
    if (!salvage) throw err;
    // Without a verified footer the trailer is not trusted: incomplete files report no original length.
    return { type: 'end', complete, totalFrames: framesKept, originalLength: complete ? (this.index as IndexData).originalLength : null, problem: err };
  }

  /** A contiguous view of the next n bytes, null when they have not arrived yet; throws at end of input. */
  private need(n: number, what: string): Uint8Array | null {
    if (this.queue.length >= n) return this.queue.peek(n);
    if (!this.eof) return null;
    throw new TokFormatError('truncated', `file ends inside the ${what} (needs ${n} bytes, has ${this.queue.length})`, this.pos + this.queue.length);
  }

  private consume(n: number): void {
    this.queue.skip(n);
    this.pos += n;
  }

  private step(): ParseEvent | null {
    switch (this.state) {
      case 'header': {
        if (this.queue.length > 0) checkMagic(this.queue.peek(Math.min(this.queue.length, TOK_MAGIC.length)));
        const prefix = this.need(PREFIX_BYTES, 'header');
        if (!prefix) return null;
        const bytes = this.need(headerExtent(prefix, this.limits), 'header');
        if (!bytes) return null;
        this.header = decodeHeader(bytes, this.limits);
        this.consume(bytes.length);
        this.state = 'blocks';
        return { type: 'header', header: this.header };
      }
      case 'blocks': {
        const h = this.header as TokHeader;
        if (this.queue.length === 0 && this.eof) {
          throw new TokFormatError('truncated', `no index after ${this.chunks.length} chunks (${this.frames} frames): the stream was cut off`, this.pos);
        }
        const prefix = this.need(8, 'block prefix');
        if (!prefix) return null;
        const tag = view(prefix).getUint32(0, true);
        const bodyLength = view(prefix).getUint32(4, true);
        if (tag === TAG_CHUNK) {
          const block = this.need(checkChunkBodyLength(h, bodyLength, this.pos), 'chunk');
          if (!block) return null;
          const info = verifyChunk(h, block, this.pos, this.frames);
          this.chunks.push(info);
          this.frames += info.numFrames;
          this.consume(block.length);
          return { type: 'chunk', info, block };
        }
        if (tag === TAG_INDEX) {
          // Known before the bytes arrive: one entry per chunk seen, so a forged length cannot make us buffer.
          if (bodyLength !== 16 + INDEX_ENTRY * this.chunks.length) {
            throw new TokFormatError('bad_index', `index body of ${bodyLength} bytes after ${this.chunks.length} chunks`, this.pos + 4);
          }
          const block = this.need(bodyLength + 12, 'index');
          if (!block) return null;
          const idx = decodeIndex(block, this.pos);
          checkIndexLayout(h, idx, this.pos);
          idx.entries.forEach((e, i) => {
            if (e.offset !== this.chunks[i].offset || e.numFrames !== this.chunks[i].numFrames) {
              throw new TokFormatError('bad_index', `index entry ${i} disagrees with the chunk at byte ${this.chunks[i].offset}`, this.pos);
            }
          });
          this.index = idx;
          this.indexOffset = this.pos;
          this.consume(block.length);
          this.state = 'footer';
          return this.step();
        }
        throw new TokFormatError('bad_chunk', `unknown block tag 0x${tag.toString(16).padStart(8, '0')}`, this.pos);
      }
      case 'footer': {
        const bytes = this.need(FOOTER_BYTES, 'footer');
        if (!bytes) return null;
        if (decodeFooter(bytes, this.pos) !== this.indexOffset) {
          throw new TokFormatError('bad_footer', 'footer does not point at the index', this.pos);
        }
        this.consume(FOOTER_BYTES);
        this.state = 'done';
        return this.step();
      }
      case 'done': {
        if (this.queue.length > 0) throw new TokFormatError('trailing_data', `${this.queue.length}+ bytes after the footer`, this.pos);
        if (!this.eof) return null;
        this.state = 'ended';
        const idx = this.index as IndexData;
        return { type: 'end', complete: true, totalFrames: idx.totalFrames, originalLength: idx.originalLength };
      }
      default:
        return null;
    }
  }
}

/**
 * Reads a whole .tok file held in memory. Throws TokFormatError on any corruption or truncation,
 * unless allowTruncated / allowDamaged ask for the intact prefix (complete=false, `problem` says why).
 */
export function readTok(buf: Uint8Array, opts: TokReadOptions = {}): TokReadResult {
  const parser = new TokParser(opts);
  parser.feed(buf);
  parser.finish();
  let header: TokHeader | null = null;
  const chunks: { info: ChunkInfo; block: Uint8Array }[] = [];
  let end: Extract<ParseEvent, { type: 'end' }> | null = null;
  for (let ev = parser.next(); ev !== null; ev = parser.next()) {
    if (ev.type === 'header') header = ev.header;
    else if (ev.type === 'chunk') chunks.push(ev);
    else end = ev;
  }
  const h = header as TokHeader;
  const e = end as NonNullable<typeof end>;
  const limits = resolveLimits(opts);
  if (h.numCodebooks * e.totalFrames > limits.maxTotalCodes) {
    throw new TokFormatError('limit_exceeded', `${h.numCodebooks} x ${e.totalFrames} codes exceed maxTotalCodes ${limits.maxTotalCodes}`);
  }
  let frames = e.totalFrames;
  let codes: Int32Array = new Int32Array(h.numCodebooks * frames);
  let complete = e.complete;
  let problem = e.problem;
  for (const { info, block } of chunks) {
    try {
      unpackChunk(h, block, info, codes, { rows: h.numCodebooks, cols: info.numFrames, stride: frames, col: info.firstFrame });
    } catch (err) {
      if (!(err instanceof TokFormatError) || !opts.allowDamaged) throw err;
      codes = firstFrames(codes, h.numCodebooks, frames, info.firstFrame);
      frames = info.firstFrame;
      complete = false;
      problem = err;
      break;
    }
  }
  const tokens = { numCodebooks: h.numCodebooks, numFrames: frames, codes };
  return { header: h, tokens, complete, originalLength: complete ? e.originalLength : null, ...(problem ? { problem } : {}) };
}

function firstFrames(codes: Int32Array, rows: number, stride: number, keep: number): Int32Array {
  const out = new Int32Array(rows * keep);
  for (let k = 0; k < rows; k++) out.set(codes.subarray(k * stride, k * stride + keep), k * keep);
  return out;
}

/**
 * Reads a .tok file arriving in pieces (an upload, a socket), yielding the header, then the tokens
 * chunk by chunk as soon as each chunk is complete and verified, then an end event. Memory stays
 * within one chunk plus one piece. Errors are thrown where they are found, after every good chunk
 * before them has been yielded.
 */
export async function* readTokStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: TokReadOptions = {},
): AsyncGenerator<TokStreamEvent, void, undefined> {
  const parser = new TokParser(opts);
  let header: TokHeader | null = null;
  // A generator, so events before an error in the same piece are still delivered.
  function* drain(): Generator<TokStreamEvent> {
    for (let ev = parser.next(); ev !== null; ev = parser.next()) {
      if (ev.type === 'header') header = ev.header;
      if (ev.type !== 'chunk') {
        yield ev;
        continue;
      }
      const h = header as unknown as TokHeader;
      const tokens = { numCodebooks: h.numCodebooks, numFrames: ev.info.numFrames, codes: new Int32Array(h.numCodebooks * ev.info.numFrames) };
      try {
        unpackChunk(h, ev.block, ev.info, tokens.codes, { rows: h.numCodebooks, cols: ev.info.numFrames, stride: ev.info.numFrames, col: 0 });
      } catch (err) {
        if (!(err instanceof TokFormatError)) throw err;
        yield parser.damage(err, ev.info.firstFrame);
        return;
      }
      yield { type: 'tokens', firstFrame: ev.info.firstFrame, tokens };
    }
  }
  for await (const piece of source) {
    parser.feed(piece);
    for (const ev of drain()) {
      yield ev;
      if (ev.type === 'end') return;
    }
  }
  parser.finish();
  yield* drain();
}

// ---------------------------------------------------------------------------------------------
// Random access: the footer's index (or a forward walk over chunk headers) finds the chunks of a
// frame range; only their bytes are read.

interface RandomSource {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

function bufferSource(buf: Uint8Array): RandomSource {
  return { size: buf.length, read: async (o, n) => buf.subarray(o, o + n), close: async () => {} };
}

async function fileSource(fh: FileHandle, owned: boolean): Promise<RandomSource> {
  const { size } = await fh.stat();
  return {
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await fh.read(out, filled, length - filled, offset + filled);
        if (bytesRead === 0) throw new TokFormatError('truncated', 'file shrank while being read', offset + filled);
        filled += bytesRead;
      }
      return out;
    },
    close: async () => {
      if (owned) await fh.close();
    },
  };
}

export interface TokFile {
  readonly header: TokHeader;
  /** true when the footer and index were found and verified */
  readonly complete: boolean;
  readonly totalFrames: number;
  readonly originalLength: number | null;
  readonly problem?: TokFormatError;
  /** Frames [startFrame, startFrame + numFrames) clipped to the file; reads and verifies only the chunks involved. */
  readRange(startFrame: number, numFrames: number): Promise<TokenBlock>;
  /** Closes the file if openTok opened it (a FileHandle passed in stays open). */
  close(): Promise<void>;
}

/**
 * Opens a .tok file for seeking: a path, an open FileHandle, or bytes in memory. Reads the header,
 * the footer and the index; without a footer (allowTruncated) it walks the chunk headers instead.
 */
export async function openTok(source: string | FileHandle | Uint8Array, opts: TokReadOptions = {}): Promise<TokFile> {
  let src: RandomSource;
  if (source instanceof Uint8Array) src = bufferSource(source);
  else if (typeof source === 'string') src = await fileSource(await open(source, 'r'), true);
  else src = await fileSource(source, false);
  try {
    return await locateChunks(src, opts);
  } catch (e) {
    await src.close();
    throw e;
  }
}

async function locateChunks(src: RandomSource, opts: TokReadOptions): Promise<TokFile> {
  const limits = resolveLimits(opts);
  const extent = headerExtent(await src.read(0, Math.min(PREFIX_BYTES, src.size)), limits);
  if (extent > src.size) throw new TokFormatError('truncated', `header needs ${extent} bytes, file has ${src.size}`, src.size);
  const h = decodeHeader(await src.read(0, extent), limits);
  let problem: TokFormatError | undefined;
  let found: IndexData | null = null;
  try {
    found = await readIndexViaFooter(src, h);
  } catch (e) {
    if (!(e instanceof TokFormatError) || !opts.allowDamaged) throw e;
    problem = e;
  }
  let entries: ChunkInfo[];
  if (found) {
    entries = found.entries;
  } else {
    problem ??= new TokFormatError('truncated', 'no valid footer: the file was cut off, is still being written, or its last bytes are damaged', src.size);
    if (!opts.allowTruncated && !opts.allowDamaged) throw problem;
    entries = await scanChunks(src, h, opts);
  }
  const last = entries[entries.length - 1];
  const totalFrames = last ? last.firstFrame + last.numFrames : 0;
  return {
    header: h,
    complete: found !== null,
    totalFrames,
    originalLength: found?.originalLength ?? null,
    ...(problem ? { problem } : {}),
    readRange: (start, count) => readChunkRange(src, h, entries, totalFrames, start, count),
    close: () => src.close(),
  };
}

/** The index through the footer; null when the file has no footer (cut off). Throws when one is there but damaged. */
async function readIndexViaFooter(src: RandomSource, h: TokHeader): Promise<IndexData | null> {
  const footerAt = src.size - FOOTER_BYTES;
  if (footerAt - h.headerLength < INDEX_PREFIX + 4) return null;
  const footer = await src.read(footerAt, FOOTER_BYTES);
  if (view(footer).getUint32(8, true) !== TAG_END) return null;
  const indexOffset = decodeFooter(footer, footerAt);
  if (indexOffset < h.headerLength || indexOffset > footerAt - INDEX_PREFIX - 4) {
    throw new TokFormatError('bad_footer', `index offset ${indexOffset} is outside the file body`, footerAt);
  }
  const count = (footerAt - indexOffset - INDEX_PREFIX - 4) / INDEX_ENTRY;
  // Every chunk takes more than 20 bytes, so a real index is never larger than the chunks it lists.
  if (!Number.isInteger(count) || count * (CHUNK_OVERHEAD + 1) > indexOffset - h.headerLength) {
    throw new TokFormatError('bad_footer', 'index size does not fit the file layout', footerAt);
  }
  const idx = decodeIndex(await src.read(indexOffset, footerAt - indexOffset), indexOffset);
  checkIndexLayout(h, idx, indexOffset);
  return idx;
}

/** Forward walk over chunk headers (no footer). Stops at the first incomplete or (allowDamaged) malformed block. */
async function scanChunks(src: RandomSource, h: TokHeader, opts: TokReadOptions): Promise<ChunkInfo[]> {
  const entries: ChunkInfo[] = [];
  let pos = h.headerLength;
  let frame = 0;
  while (pos + CHUNK_PREFIX <= src.size) {
    const dv = view(await src.read(pos, CHUNK_PREFIX));
    if (dv.getUint32(0, true) === TAG_INDEX) break;
    const numFrames = dv.getUint32(12, true);
    const ok =
      dv.getUint32(0, true) === TAG_CHUNK &&
      dv.getUint32(8, true) === frame &&
      numFrames >= 1 &&
      numFrames <= h.framesPerChunk &&
      dv.getUint32(4, true) + 12 === chunkBlockLength(h, numFrames);
    if (!ok) {
      if (opts.allowDamaged) break;
      throw new TokFormatError('bad_chunk', `malformed chunk header at frame ${frame}`, pos);
    }
    const length = chunkBlockLength(h, numFrames);
    if (pos + length > src.size) break;
    entries.push({ offset: pos, firstFrame: frame, numFrames });
    pos += length;
    frame += numFrames;
  }
  return entries;
}

async function readChunkRange(
  src: RandomSource,
  h: TokHeader,
  entries: ChunkInfo[],
  totalFrames: number,
  startFrame: number,
  numFrames: number,
): Promise<TokenBlock> {
  if (!Number.isInteger(startFrame) || startFrame < 0 || !Number.isInteger(numFrames) || numFrames < 0) {
    throw new CodecError('invalid_argument', `frame range must be non-negative integers, got ${startFrame} + ${numFrames}`);
  }
  const start = Math.min(startFrame, totalFrames);
  const end = Math.min(startFrame + numFrames, totalFrames);
  const K = h.numCodebooks;
  const out: TokenBlock = { numCodebooks: K, numFrames: end - start, codes: new Int32Array(K * (end - start)) };
  if (end === start) return out;
  const first = chunkAt(entries, start);
  const last = chunkAt(entries, end - 1);
  const from = entries[first].offset;
  const bytes = await src.read(from, entries[last].offset + chunkBlockLength(h, entries[last].numFrames) - from);
  for (let i = first; i <= last; i++) {
    const e = entries[i];
    const block = bytes.subarray(e.offset - from, e.offset - from + chunkBlockLength(h, e.numFrames));
    const info = verifyChunk(h, block, e.offset, e.firstFrame);
    const lo = Math.max(start, e.firstFrame);
    const hi = Math.min(end, e.firstFrame + e.numFrames);
    if (lo === e.firstFrame && hi === e.firstFrame + e.numFrames) {
      unpackChunk(h, block, info, out.codes, { rows: K, cols: e.numFrames, stride: out.numFrames, col: lo - start });
      continue;
    }
    const tmp = new Int32Array(K * e.numFrames);
    unpackChunk(h, block, info, tmp, { rows: K, cols: e.numFrames, stride: e.numFrames, col: 0 });
    for (let k = 0; k < K; k++) {
      out.codes.set(tmp.subarray(k * e.numFrames + lo - e.firstFrame, k * e.numFrames + hi - e.firstFrame), k * out.numFrames + lo - start);
    }
  }
  return out;
}

/** Index of the chunk holding `frame` (binary search over contiguous chunks). */
function chunkAt(entries: ChunkInfo[], frame: number): number {
  let lo = 0;
  let hi = entries.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (entries[mid].firstFrame <= frame) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Opens, reads frames [startFrame, startFrame + numFrames) (clipped), closes. */
export async function readTokRange(
  source: string | FileHandle | Uint8Array,
  startFrame: number,
  numFrames: number,
  opts: TokReadOptions = {},
): Promise<{ header: TokHeader; startFrame: number; tokens: TokenBlock; totalFrames: number; complete: boolean }> {
  const file = await openTok(source, opts);
  try {
    const tokens = await file.readRange(startFrame, numFrames);
    return { header: file.header, startFrame: Math.min(startFrame, file.totalFrames), tokens, totalFrames: file.totalFrames, complete: file.complete };
  } finally {
    await file.close();
  }
}

/** The frame containing time `seconds` (at the model rate). */
export function frameAtTime(header: Pick<TokHeader, 'sampleRate' | 'hopLength'>, seconds: number): number {
  return Math.max(0, Math.floor((seconds * header.sampleRate) / header.hopLength));
}

// ---------------------------------------------------------------------------------------------
// Writer

/** Receives the file's bytes in order; when it returns a promise the writer waits for it before the next call. */
export type TokSink = (bytes: Uint8Array) => unknown;

/**
 * Writes a .tok file as tokens arrive. Blocks of any size are buffered to whole chunks; `flush()`
 * emits a short chunk early (live streams); `finish()` writes the last chunk, the index and the
 * footer. Each sink call gets fresh bytes, in order; await write() for backpressure. Memory: one
 * chunk of codes plus one index entry per chunk.
 */
export class TokWriter {
  readonly header: TokHeader;
  private readonly sink: TokSink;
  private readonly buffer: Int32Array;
  private buffered = 0;
  private frames = 0;
  private bytes = 0;
  private readonly index: ChunkInfo[] = [];
  private tail: Promise<void> = Promise.resolve();
  private headerSent = false;
  private finished = false;

  constructor(fields: TokHeaderFields, sink: TokSink) {
    this.header = headerFromFields(fields);
    this.sink = sink;
    this.buffer = new Int32Array(this.header.numCodebooks * this.header.framesPerChunk);
  }

  /** Frames accepted so far (written or buffered). */
  get totalFrames(): number {
    return this.frames + this.buffered;
  }

  write(block: TokenBlock): Promise<void> {
    this.checkOpen();
    const h = this.header;
    const K = h.numCodebooks;
    if (block.numCodebooks !== K) {
      throw new CodecError('model_mismatch', `.tok writer: block has ${block.numCodebooks} codebooks, file has ${K}`);
    }
    const n = block.numFrames;
    if (!Number.isInteger(n) || n < 0 || block.codes.length !== K * n) {
      throw new CodecError('invalid_tokens', `.tok writer: block of ${K} x ${n} frames has ${block.codes.length} codes`);
    }
    if (this.totalFrames + n > MAX_U32) throw new CodecError('limit_exceeded', '.tok files hold at most 2^32 - 1 frames');
    const codes = block.codes;
    const size = h.codebookSize;
    for (let i = 0; i < codes.length; i++) {
      const v = codes[i];
      if (v < 0 || v >= size) {
        throw new CodecError('invalid_tokens', `.tok writer: code ${v} at codebook ${Math.floor(i / n)}, frame ${i % n} is outside [0, ${size})`);
      }
    }
    const F = h.framesPerChunk;
    for (let t = 0; t < n; ) {
      const m = Math.min(F - this.buffered, n - t);
      for (let k = 0; k < K; k++) this.buffer.set(codes.subarray(k * n + t, k * n + t + m), k * F + this.buffered);
      this.buffered += m;
      t += m;
      if (this.buffered === F) this.emitChunk();
    }
    return this.tail;
  }

  /** Emits buffered frames now as a (short) chunk, so a live reader gets them without waiting for a full chunk. */
  flush(): Promise<void> {
    this.checkOpen();
    if (this.buffered > 0) this.emitChunk();
    else this.ensureHeader();
    return this.tail;
  }

  /** Writes the remaining frames, the index and the footer. originalLength: samples at originalSampleRate, null if unknown. */
  async finish(opts: { originalLength: number | null }): Promise<{ totalFrames: number; bytes: number }> {
    this.checkOpen();
    const len = opts.originalLength;
    if (len !== null && (!Number.isSafeInteger(len) || len < 0)) {
      throw new CodecError('invalid_argument', `.tok writer: originalLength must be a non-negative integer or null, got ${String(len)}`);
    }
    if (this.buffered > 0) this.emitChunk();
    this.ensureHeader();
    this.finished = true;
    const count = this.index.length;
    const indexOffset = this.bytes;
    const out = new Uint8Array(INDEX_PREFIX + INDEX_ENTRY * count + 4 + FOOTER_BYTES);
    const dv = view(out);
    dv.setUint32(0, TAG_INDEX, true);
    dv.setUint32(4, 16 + INDEX_ENTRY * count, true);
    dv.setUint32(8, this.frames, true);
    dv.setUint32(12, count, true);
    dv.setBigUint64(16, len === null ? UNKNOWN_LENGTH : BigInt(len), true);
    let p = INDEX_PREFIX;
    for (const e of this.index) {
      dv.setBigUint64(p, BigInt(e.offset), true);
      dv.setUint32(p + 8, e.firstFrame, true);
      dv.setUint32(p + 12, e.numFrames, true);
      p += INDEX_ENTRY;
    }
    dv.setUint32(p, crc32(out, 0, p), true);
    p += 4;
    dv.setBigUint64(p, BigInt(indexOffset), true);
    dv.setUint32(p + 8, TAG_END, true);
    dv.setUint32(p + 12, crc32(out, p, p + 12), true);
    this.emit(out);
    await this.tail;
    return { totalFrames: this.frames, bytes: this.bytes };
  }

  private checkOpen(): void {
    if (this.finished) throw new CodecError('invalid_argument', '.tok writer: already finished');
  }

  private ensureHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.emit(encodeHeader(this.header));
  }

  private emitChunk(): void {
    this.ensureHeader();
    const h = this.header;
    const n = this.buffered;
    const out = new Uint8Array(chunkBlockLength(h, n));
    const dv = view(out);
    dv.setUint32(0, TAG_CHUNK, true);
    dv.setUint32(4, out.length - 12, true);
    dv.setUint32(8, this.frames, true);
    dv.setUint32(12, n, true);
    packCodes(this.buffer, { rows: h.numCodebooks, cols: n, stride: h.framesPerChunk, col: 0 }, h.bitsPerCode, out, CHUNK_PREFIX);
    dv.setUint32(out.length - 4, crc32(out, 0, out.length - 4), true);
    this.index.push({ offset: this.bytes, firstFrame: this.frames, numFrames: n });
    this.frames += n;
    this.buffered = 0;
    this.emit(out);
  }

  private emit(bytes: Uint8Array): void {
    this.bytes += bytes.length;
    const sink = this.sink;
    this.tail = this.tail.then(async () => {
      await sink(bytes);
    });
  }
}

/** Whole tokens to .tok bytes in memory (small files, tests); TokWriter streams. */
export async function encodeTok(fields: TokHeaderFields, tokens: TokenBlock, opts: { originalLength: number | null }): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const writer = new TokWriter(fields, (b) => {
    parts.push(b);
  });
  await writer.write(tokens);
  const { bytes } = await writer.finish(opts);
  const out = new Uint8Array(bytes);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Model check

export interface TokModelIdentity {
  name: string;
  sha256: string;
  sampleRate?: number;
  hopLength?: number;
  codebookSize?: number;
  /** codebooks the model has; the file may use a leading subset */
  numCodebooks?: number;
}

/** Throws TokModelMismatchError unless the file was written by this model (same sha256) and fits its shape. */
export function assertTokMatchesModel(header: TokHeader, model: TokModelIdentity): void {
  const mismatches: string[] = [];
  if (header.modelSha256 !== model.sha256.toLowerCase()) mismatches.push('sha256');
  for (const field of ['sampleRate', 'hopLength', 'codebookSize'] as const) {
    const want = model[field];
    if (want !== undefined && header[field] !== want) mismatches.push(`${field} ${header[field]} vs ${want}`);
  }
  if (model.numCodebooks !== undefined && header.numCodebooks > model.numCodebooks) {
    mismatches.push(`file has ${header.numCodebooks} codebooks, model ${model.numCodebooks}`);
  }
  if (mismatches.length === 0) return;
  throw new TokModelMismatchError(
    `token file was written by model "${header.modelName}" (sha256 ${header.modelSha256}) but is being decoded with model ` +
      `"${model.name}" (sha256 ${model.sha256.toLowerCase()}): ${mismatches.join('; ')}`,
    mismatches,
  );
}
