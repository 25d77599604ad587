/** The .tok header: validation of writer input, encoding, and checked decoding. */
import { bitsPerCode, packedLength } from './bitpack.js';
import { crc32 } from './crc32.js';
import { CodecError } from '../pure/errors.js';
import { TokFormatError } from './errors.js';
import {
  DEFAULT_FRAMES_PER_CHUNK,
  HEADER_FIXED_BODY,
  MAX_FRAMES_PER_CHUNK,
  MAX_METADATA_BYTES,
  MAX_U32,
  PREFIX_BYTES,
  TOK_MAGIC,
  TOK_VERSION,
  view,
} from './layout.js';
import { DEFAULT_TOK_LIMITS, resolveLimits, type TokHeader, type TokHeaderFields, type TokLimits, type TokReadOptions } from './types.js';

const invalid = (message: string): CodecError => new CodecError('invalid_argument', `.tok header: ${message}`);

function checkUint(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

export function maxChunkPayload(h: Pick<TokHeader, 'framesPerChunk' | 'numCodebooks' | 'bitsPerCode'>): number {
  return packedLength(h.framesPerChunk * h.numCodebooks, h.bitsPerCode);
}

/** Validates writer input and fills in defaults. */
export function headerFromFields(f: TokHeaderFields): TokHeader {
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

export function encodeHeader(h: TokHeader): Uint8Array {
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

/** Checks the magic against however many bytes are there (so a WAV upload fails at once). */
export function checkMagic(bytes: Uint8Array): void {
  const n = Math.min(bytes.length, TOK_MAGIC.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== TOK_MAGIC[i]) throw new TokFormatError('bad_magic', 'not a .tok file (magic bytes differ)', 0);
  }
}

/** Total header bytes (prefix, body, CRC), from the 16-byte prefix. */
export function headerExtent(prefix: Uint8Array, limits: TokLimits): number {
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

export function decodeHeader(bytes: Uint8Array, limits: TokLimits): TokHeader {
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
