/**
 * Random access: the footer's index (or, when a stream was cut, a forward walk over chunk headers)
 * finds the chunks of a frame range; only their bytes are read.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CodecError } from '../pure/errors.js';
import type { TokenBlock } from '../pure/types.js';
import { chunkBlockLength, unpackChunk, verifyChunk, type ChunkInfo } from './chunk.js';
import { TokFormatError } from './errors.js';
import { decodeHeader, headerExtent } from './header.js';
import { BLOCK_FRAMING, CHUNK_OVERHEAD, CHUNK_PREFIX, FOOTER_BYTES, INDEX_ENTRY, INDEX_PREFIX, PREFIX_BYTES, TAG_CHUNK, TAG_END, TAG_INDEX, view } from './layout.js';
import { bufferSource, fileSource, type RandomSource } from './source.js';
import { checkIndexLayout, decodeFooter, decodeIndex, type IndexData } from './trailer.js';
import { resolveLimits, type TokHeader, type TokReadOptions } from './types.js';

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
      dv.getUint32(4, true) + BLOCK_FRAMING === chunkBlockLength(h, numFrames);
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
