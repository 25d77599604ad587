/** Streaming .tok writer, and encodeTok for whole token blocks in memory. */
import { CodecError } from '../pure/errors.js';
import type { TokenBlock } from '../pure/types.js';
import { encodeChunk, type ChunkInfo } from './chunk.js';
import { encodeHeader, headerFromFields } from './header.js';
import { MAX_U32 } from './layout.js';
import { encodeTrailer } from './trailer.js';
import type { TokHeader, TokHeaderFields } from './types.js';

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
    this.emit(encodeTrailer(this.index, this.frames, len, this.bytes));
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
    const out = encodeChunk(h, this.frames, this.buffer, { rows: h.numCodebooks, cols: n, stride: h.framesPerChunk, col: 0 });
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
