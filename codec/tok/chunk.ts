/** Chunk blocks: a bounded run of frames, bit-packed codebook by codebook, under one CRC. */
import { packCodes, packedLength, unpackCodes, type Window } from './bitpack.js';
import { crc32 } from './crc32.js';
import { TokFormatError } from './errors.js';
import { maxChunkPayload } from './header.js';
import { BLOCK_FRAMING, CHUNK_OVERHEAD, CHUNK_PREFIX, MAX_U32, TAG_CHUNK, view } from './layout.js';
import type { TokHeader } from './types.js';

/** Where a chunk sits: byte offset of its block and the frames it holds. */
export interface ChunkInfo {
  offset: number;
  firstFrame: number;
  numFrames: number;
}

export function chunkBlockLength(h: TokHeader, numFrames: number): number {
  return CHUNK_OVERHEAD + packedLength(numFrames * h.numCodebooks, h.bitsPerCode);
}

/** The block for the `w.cols` frames in window `w` of `codes`, starting at frame `firstFrame`. Codes are range-checked by the caller. */
export function encodeChunk(h: TokHeader, firstFrame: number, codes: Int32Array, w: Window): Uint8Array {
  const out = new Uint8Array(chunkBlockLength(h, w.cols));
  const dv = view(out);
  dv.setUint32(0, TAG_CHUNK, true);
  dv.setUint32(4, out.length - BLOCK_FRAMING, true);
  dv.setUint32(8, firstFrame, true);
  dv.setUint32(12, w.cols, true);
  packCodes(codes, w, h.bitsPerCode, out, CHUNK_PREFIX);
  dv.setUint32(out.length - 4, crc32(out, 0, out.length - 4), true);
  return out;
}

/** Bounds a chunk's declared body length before its bytes are awaited or read; returns the whole block's length. */
export function checkChunkBodyLength(h: TokHeader, bodyLength: number, offset: number): number {
  if (bodyLength < 9 || bodyLength > 8 + maxChunkPayload(h)) {
    throw new TokFormatError('bad_chunk', `chunk body length ${bodyLength} is impossible for ${h.framesPerChunk}-frame chunks`, offset + 4);
  }
  return bodyLength + BLOCK_FRAMING;
}

/** CRC and structure of one whole chunk block (not yet its codes). */
export function verifyChunk(h: TokHeader, block: Uint8Array, offset: number, expectedFirst: number): ChunkInfo {
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
export function unpackChunk(h: TokHeader, block: Uint8Array, info: ChunkInfo, dst: Int32Array, w: Window): void {
  const max = unpackCodes(block, CHUNK_PREFIX, h.bitsPerCode, dst, w);
  if (max >= h.codebookSize) {
    throw new TokFormatError('code_out_of_range', `code ${max} in a codebook of ${h.codebookSize}`, info.offset + CHUNK_PREFIX);
  }
  const usedBits = (info.numFrames * h.numCodebooks * h.bitsPerCode) % 8;
  if (usedBits !== 0 && block[block.length - 5] >> usedBits !== 0) {
    throw new TokFormatError('bad_chunk', 'padding bits are not zero', info.offset + block.length - 5);
  }
}
