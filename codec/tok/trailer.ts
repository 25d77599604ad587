/** The trailer: the index (one entry per chunk, for seeking) and the fixed-size footer that points at it. */
import { crc32 } from './crc32.js';
import { chunkBlockLength, type ChunkInfo } from './chunk.js';
import { TokFormatError } from './errors.js';
import { BLOCK_FRAMING, FOOTER_BYTES, INDEX_ENTRY, INDEX_PREFIX, TAG_END, TAG_INDEX, UNKNOWN_LENGTH, view } from './layout.js';
import type { TokHeader } from './types.js';

export interface IndexData {
  totalFrames: number;
  originalLength: number | null;
  entries: ChunkInfo[];
}

/** Declared body length of an index listing `count` chunks. */
export function indexBodyLength(count: number): number {
  return INDEX_PREFIX - 8 + INDEX_ENTRY * count;
}

/** Index and footer bytes for a file whose chunks are `entries` and whose index starts at byte `indexOffset`. */
export function encodeTrailer(entries: readonly ChunkInfo[], totalFrames: number, originalLength: number | null, indexOffset: number): Uint8Array {
  const count = entries.length;
  const out = new Uint8Array(indexBodyLength(count) + BLOCK_FRAMING + FOOTER_BYTES);
  const dv = view(out);
  dv.setUint32(0, TAG_INDEX, true);
  dv.setUint32(4, indexBodyLength(count), true);
  dv.setUint32(8, totalFrames, true);
  dv.setUint32(12, count, true);
  dv.setBigUint64(16, originalLength === null ? UNKNOWN_LENGTH : BigInt(originalLength), true);
  let p = INDEX_PREFIX;
  for (const e of entries) {
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
  return out;
}

export function decodeIndex(block: Uint8Array, offset: number): IndexData {
  const dv = view(block);
  const end = block.length - 4;
  if (dv.getUint32(0, true) !== TAG_INDEX) throw new TokFormatError('bad_index', 'expected the index (TIDX)', offset);
  if (crc32(block, 0, end) !== dv.getUint32(end, true)) throw new TokFormatError('index_crc', 'index checksum mismatch', offset);
  const count = dv.getUint32(12, true);
  if (dv.getUint32(4, true) !== indexBodyLength(count) || block.length !== indexBodyLength(count) + BLOCK_FRAMING) {
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
export function checkIndexLayout(h: TokHeader, idx: IndexData, indexOffset: number): void {
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

/** The index offset the footer at byte `offset` points at. */
export function decodeFooter(bytes: Uint8Array, offset: number): number {
  const dv = view(bytes);
  if (dv.getUint32(8, true) !== TAG_END) throw new TokFormatError('bad_footer', 'expected the footer (TEND)', offset + 8);
  if (crc32(bytes, 0, 12) !== dv.getUint32(12, true)) throw new TokFormatError('footer_crc', 'footer checksum mismatch', offset);
  const indexOffset = dv.getBigUint64(0, true);
  if (indexOffset > BigInt(Number.MAX_SAFE_INTEGER)) throw new TokFormatError('bad_footer', 'index offset out of range', offset);
  return Number(indexOffset);
}
