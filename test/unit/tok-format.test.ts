import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bitsPerCode, packCodes, packedLength, unpackCodes } from '../../codec/tok/bitpack.js';
import { crc32 } from '../../codec/tok/crc32.js';
import { CodecError } from '../../codec/pure/errors.js';
import {
  assertTokMatchesModel,
  encodeTok,
  frameAtTime,
  openTok,
  readTok,
  readTokHeader,
  readTokRange,
  readTokStream,
  TokFormatError,
  verifyTok,
  TokModelMismatchError,
  TokWriter,
  type TokHeaderFields,
  type TokReadOptions,
  type TokStreamEvent,
} from '../../codec/tokfile.js';
import type { TokenBlock } from '../../codec/pure/types.js';

function rng(seed: number): () => number {
  // mulberry32: deterministic test data without a dependency
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random codes with both extremes of the codebook present. */
function randomTokens(K: number, T: number, size: number, seed: number): TokenBlock {
  const r = rng(seed);
  const codes = new Int32Array(K * T);
  for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(r() * size);
  if (codes.length > 0) codes[0] = size - 1;
  if (codes.length > 1) codes[codes.length - 1] = 0;
  return { numCodebooks: K, numFrames: T, codes };
}

function sliceFrames(b: TokenBlock, start: number, end: number): Int32Array {
  const n = end - start;
  const out = new Int32Array(b.numCodebooks * n);
  for (let k = 0; k < b.numCodebooks; k++) out.set(b.codes.subarray(k * b.numFrames + start, k * b.numFrames + end), k * n);
  return out;
}

const SHA = '0123456789abcdef'.repeat(4);

function fields(over: Partial<TokHeaderFields> = {}): TokHeaderFields {
  return {
    modelName: 'unit-model',
    modelSha256: SHA,
    sampleRate: 24000,
    hopLength: 320,
    numCodebooks: 3,
    codebookSize: 1000,
    originalSampleRate: 44100,
    framesPerChunk: 4,
    metadata: { source: 'tokfile.test', note: 'π ≈ 3.14' },
    ...over,
  };
}

/** Writes `tokens` in blocks of random sizes; `flushAt` frame counts get an early flush. */
async function writeInPieces(f: TokHeaderFields, tokens: TokenBlock, seed: number, flushAt: number[] = [], originalLength: number | null = 999): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const w = new TokWriter(f, (b) => {
    parts.push(b);
  });
  const r = rng(seed);
  for (let t = 0; t < tokens.numFrames; ) {
    const n = Math.min(tokens.numFrames - t, 1 + Math.floor(r() * 3 * (f.framesPerChunk ?? 256)));
    let end = t + n;
    const flush = flushAt.find((x) => x > t && x <= end);
    if (flush !== undefined) end = flush;
    await w.write({ numCodebooks: tokens.numCodebooks, numFrames: end - t, codes: sliceFrames(tokens, t, end) });
    if (flush !== undefined) await w.flush();
    t = end;
  }
  await w.finish({ originalLength });
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

async function* pieces(buf: Uint8Array, seed: number, maxPiece: number): AsyncGenerator<Uint8Array> {
  const r = rng(seed);
  for (let p = 0; p < buf.length; ) {
    const n = 1 + Math.floor(r() * maxPiece);
    yield buf.slice(p, p + n);
    p += n;
  }
}

async function collectStream(source: AsyncIterable<Uint8Array>, opts: TokReadOptions = {}): Promise<{ codes: Int32Array[]; frames: number; events: TokStreamEvent[] }> {
  const events: TokStreamEvent[] = [];
  for await (const ev of readTokStream(source, opts)) events.push(ev);
  const blocks = events.flatMap((e) => (e.type === 'tokens' ? [e] : []));
  const frames = blocks.reduce((s, b) => s + b.tokens.numFrames, 0);
  return { codes: blocks.map((b) => b.tokens.codes), frames, events };
}

/** Stream blocks reassembled into one codebook-major block. */
function assemble(K: number, events: TokStreamEvent[]): TokenBlock {
  const blocks = events.flatMap((e) => (e.type === 'tokens' ? [e] : []));
  const T = blocks.reduce((s, b) => s + b.tokens.numFrames, 0);
  const codes = new Int32Array(K * T);
  for (const b of blocks) {
    for (let k = 0; k < K; k++) {
      codes.set(b.tokens.codes.subarray(k * b.tokens.numFrames, (k + 1) * b.tokens.numFrames), k * T + b.firstFrame);
    }
  }
  return { numCodebooks: K, numFrames: T, codes };
}

function expectFormatError(fn: () => unknown, code?: string): TokFormatError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TokFormatError);
    if (code) expect((e as TokFormatError).code).toBe(code);
    expect((e as Error).message).toMatch(/^\.tok [a-z_]+/);
    return e as TokFormatError;
  }
  throw new Error('expected a TokFormatError');
}

describe('bit packing', () => {
  it('round-trips every width 1..31 through windows with a stride', () => {
    for (let bits = 1; bits <= 31; bits++) {
      const rows = 3;
      const cols = 37;
      const stride = 50;
      const src = new Int32Array(rows * stride);
      const r = rng(bits);
      for (let i = 0; i < src.length; i++) src[i] = Math.floor(r() * 2 ** bits);
      src[5] = 2 ** bits - 1;
      const packed = new Uint8Array(packedLength(rows * cols, bits) + 2);
      const written = packCodes(src, { rows, cols, stride, col: 5 }, bits, packed, 1);
      expect(written).toBe(Math.ceil((rows * cols * bits) / 8));
      const back = new Int32Array(rows * cols);
      const max = unpackCodes(packed, 1, bits, back, { rows, cols, stride: cols, col: 0 });
      for (let k = 0; k < rows; k++) {
        expect(Array.from(back.subarray(k * cols, (k + 1) * cols))).toEqual(Array.from(src.subarray(k * stride + 5, k * stride + 5 + cols)));
      }
      expect(max).toBe(Math.max(...back));
    }
  });

  it('uses ceil(log2(codebookSize)) bits, LSB first', () => {
    expect([2, 3, 4, 1000, 1024, 1025, 4096, 65536, 2 ** 31].map(bitsPerCode)).toEqual([1, 2, 2, 10, 10, 11, 12, 16, 31]);
    const out = new Uint8Array(2);
    packCodes(Int32Array.of(5, 1, 3), { rows: 1, cols: 3, stride: 3, col: 0 }, 3, out, 0);
    // 5, 1, 3 LSB first: stream bits 101 100 110, so byte 0 holds 1,0,1,1,0,0,1,1 and byte 1 the last 0 plus padding.
    expect(Array.from(out)).toEqual([0b11001101, 0b00000000]);
  });

  it('CRC-32 matches the zlib/PNG polynomial', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe('.tok round trip', () => {
  const sizes = [2, 1000, 1024, 4096, 65536, 2 ** 24 + 1, 2 ** 31];
  for (const size of sizes) {
    for (const K of [1, 2, 8]) {
      it(`codebookSize ${size}, ${K} codebook(s): bit-exact, packed at ${bitsPerCode(size)} bits`, async () => {
        const F = 16;
        for (const T of [0, 1, 15, 16, 17, 3 * F + 7]) {
          const tokens = randomTokens(K, T, size, size + K * 101 + T);
          const f = fields({ numCodebooks: K, codebookSize: size, framesPerChunk: F });
          const buf = await writeInPieces(f, tokens, T + 7, [], T * 320);
          const r = readTok(buf);
          expect(r.complete).toBe(true);
          expect(r.problem).toBeUndefined();
          expect(r.originalLength).toBe(T * 320);
          expect(r.tokens.numCodebooks).toBe(K);
          expect(r.tokens.numFrames).toBe(T);
          expect(r.tokens.codes).toEqual(tokens.codes);
          // The size is exactly the documented layout: header + chunks of 20 + packed bytes + index + footer.
          const chunks = Math.ceil(T / F);
          let payload = 0;
          for (let c = 0; c < chunks; c++) payload += 20 + Math.ceil((Math.min(F, T - c * F) * K * bitsPerCode(size)) / 8);
          expect(buf.length).toBe(r.header.headerLength + payload + 28 + 16 * chunks + 16);
        }
      });
    }
  }

  it('keeps every header field', async () => {
    const f = fields({ modelName: 'modèle-😀', metadata: { text: 'héllo', list: [1, 2, { x: null }] } });
    const buf = await encodeTok(f, randomTokens(3, 9, 1000, 1), { originalLength: 123456789012 });
    const h = readTokHeader(buf);
    expect(h).toMatchObject({
      version: { major: 1, minor: 0 },
      modelName: 'modèle-😀',
      modelSha256: SHA,
      sampleRate: 24000,
      hopLength: 320,
      numCodebooks: 3,
      codebookSize: 1000,
      bitsPerCode: 10,
      originalSampleRate: 44100,
      framesPerChunk: 4,
      metadata: { text: 'héllo', list: [1, 2, { x: null }] },
    });
    expect(readTok(buf).originalLength).toBe(123456789012);
    expect(readTok(buf).header).toEqual(h);
  });

  it('records an unknown original length as null', async () => {
    const buf = await encodeTok(fields(), randomTokens(3, 5, 1000, 2), { originalLength: null });
    expect(readTok(buf).originalLength).toBeNull();
  });

  it('writes an empty file (0 frames) that every reader accepts', async () => {
    const buf = await encodeTok(fields(), { numCodebooks: 3, numFrames: 0, codes: new Int32Array(0) }, { originalLength: 0 });
    const r = readTok(buf);
    expect(r).toMatchObject({ complete: true, originalLength: 0, tokens: { numCodebooks: 3, numFrames: 0 } });
    const range = await readTokRange(buf, 0, 10);
    expect(range.tokens.numFrames).toBe(0);
    expect(range.complete).toBe(true);
    const s = await collectStream(pieces(buf, 1, 5));
    expect(s.frames).toBe(0);
    expect(s.events.at(-1)).toMatchObject({ type: 'end', complete: true, totalFrames: 0 });
  });

  it('keeps flushed short chunks in order (live streams)', async () => {
    const tokens = randomTokens(2, 100, 1024, 3);
    const buf = await writeInPieces(fields({ numCodebooks: 2, codebookSize: 1024, framesPerChunk: 8 }), tokens, 4, [3, 4, 21, 60]);
    expect(readTok(buf).tokens.codes).toEqual(tokens.codes);
  });

  it('gives the same bytes with an async sink as with a sync one', async () => {
    const tokens = randomTokens(3, 50, 1000, 5);
    const parts: Uint8Array[] = [];
    const w = new TokWriter(fields(), async (b) => {
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      parts.push(b);
    });
    // Not awaiting each write: the writer must still keep the sink calls in order.
    const pending = [w.write({ numCodebooks: 3, numFrames: 20, codes: sliceFrames(tokens, 0, 20) }), w.write({ numCodebooks: 3, numFrames: 30, codes: sliceFrames(tokens, 20, 50) })];
    await Promise.all(pending);
    await w.finish({ originalLength: 999 });
    expect(concat(parts)).toEqual(await encodeTok(fields(), tokens, { originalLength: 999 }));
  });
});

describe('writer input checks', () => {
  it('rejects codes outside the codebook, wrong shapes and use after finish', async () => {
    const w = new TokWriter(fields(), () => {});
    expect(() => w.write({ numCodebooks: 3, numFrames: 1, codes: Int32Array.of(1, 1000, 2) })).toThrow(/code 1000 at codebook 1, frame 0/);
    expect(() => w.write({ numCodebooks: 3, numFrames: 1, codes: Int32Array.of(1, -1, 2) })).toThrow(CodecError);
    expect(() => w.write({ numCodebooks: 2, numFrames: 1, codes: Int32Array.of(1, 2) })).toThrow(/2 codebooks, file has 3/);
    expect(() => w.write({ numCodebooks: 3, numFrames: 2, codes: Int32Array.of(1, 2) })).toThrow(/has 2 codes/);
    await w.finish({ originalLength: 0 });
    expect(() => w.write({ numCodebooks: 3, numFrames: 0, codes: new Int32Array(0) })).toThrow(/already finished/);
  });

  it('rejects impossible header fields with a clear message', () => {
    const bad: [Partial<TokHeaderFields>, RegExp][] = [
      [{ modelSha256: 'xyz' }, /64 hex digits/],
      [{ modelName: '' }, /modelName/],
      [{ modelName: 'x'.repeat(256) }, /modelName/],
      [{ codebookSize: 1 }, /codebookSize/],
      [{ numCodebooks: 0 }, /numCodebooks/],
      [{ sampleRate: 0 }, /sampleRate/],
      [{ hopLength: 1.5 }, /hopLength/],
      [{ framesPerChunk: 0 }, /framesPerChunk/],
      [{ metadata: { big: 'x'.repeat(70000) } }, /metadata is 700\d\d bytes/],
      [{ metadata: [] as unknown as Record<string, unknown> }, /plain JSON object/],
    ];
    for (const [over, msg] of bad) {
      expect(() => new TokWriter(fields(over), () => {}), JSON.stringify(over).slice(0, 60)).toThrow(msg);
    }
  });
});

describe('.tok damage detection', () => {
  // K=3, 1000 entries (10 bits), 4 frames per chunk, 10 frames: chunks of 4, 4, 2 frames.
  const tokens = randomTokens(3, 10, 1000, 42);
  let file: Uint8Array;
  let chunkEnds: { end: number; frames: number }[];

  beforeAll(async () => {
    file = await encodeTok(fields(), tokens, { originalLength: 12345 });
    const h = readTokHeader(file);
    chunkEnds = [];
    let pos = h.headerLength;
    for (const n of [4, 4, 2]) {
      pos += 20 + Math.ceil((n * 3 * 10) / 8);
      chunkEnds.push({ end: pos, frames: (chunkEnds.at(-1)?.frames ?? 0) + n });
    }
  });

  it('detects every single-byte corruption in every reader', async () => {
    let checked = 0;
    for (let i = 0; i < file.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = file.slice();
        bad[i] ^= mask;
        expectFormatError(() => readTok(bad));
        await expect(readTokRange(bad, 0, 10), `byte ${i}`).rejects.toBeInstanceOf(TokFormatError);
        await expect(verifyTok(pieces(bad, i, 40)), `byte ${i}`).rejects.toBeInstanceOf(TokFormatError);
        // what `tokstream info` reports: never complete, the problem named, frames only from verified chunks
        const report = await verifyTok([bad], { allowDamaged: true }).catch((e: unknown) => e);
        if (report instanceof TokFormatError) expect(i, 'only header damage is unrecoverable').toBeLessThan(readTokHeader(file).headerLength);
        else {
          expect(report, `byte ${i}`).toMatchObject({ complete: false, originalLength: null });
          expect((report as { problem?: unknown }).problem, `byte ${i}`).toBeInstanceOf(TokFormatError);
          expect((report as { totalFrames: number }).totalFrames).toBeLessThanOrEqual(chunkEnds.filter((c) => c.end <= i).at(-1)?.frames ?? 0);
        }
        await expect(collectStream(pieces(bad, i, 40)), `byte ${i}`).rejects.toBeInstanceOf(TokFormatError);
        // Salvage mode never returns a wrong token: only an intact prefix, flagged incomplete.
        let salvaged;
        try {
          salvaged = readTok(bad, { allowDamaged: true });
        } catch (e) {
          expect(e, `byte ${i}`).toBeInstanceOf(TokFormatError);
          expect(i, 'only header damage is unrecoverable').toBeLessThan(readTokHeader(file).headerLength);
          checked++;
          continue;
        }
        expect(salvaged.complete).toBe(false);
        expect(salvaged.problem).toBeInstanceOf(TokFormatError);
        expect(salvaged.tokens.codes).toEqual(sliceFrames(tokens, 0, salvaged.tokens.numFrames));
        checked++;
      }
    }
    expect(checked).toBe(file.length * 3);
  });

  it('names the damaged part', async () => {
    const h = readTokHeader(file);
    const flip = (i: number): Uint8Array => {
      const b = file.slice();
      b[i] ^= 0x40;
      return b;
    };
    expectFormatError(() => readTok(flip(0)), 'bad_magic');
    expectFormatError(() => readTok(flip(8)), 'unsupported_version');
    expectFormatError(() => readTok(flip(20)), 'header_crc');
    expectFormatError(() => readTok(flip(h.headerLength + 18)), 'chunk_crc');
    expectFormatError(() => readTok(flip(chunkEnds[2].end + 30)), 'index_crc');
    expectFormatError(() => readTok(flip(file.length - 3)), 'footer_crc');
    expectFormatError(() => readTok(flip(file.length - 6)), 'bad_footer');
    expectFormatError(() => readTok(concat([file, Uint8Array.of(0)])), 'trailing_data');
    // the whole-file check names the same parts, and tells trailing data from a cut
    const report = async (bytes: Uint8Array) => (await verifyTok([bytes], { allowDamaged: true })).problem?.code;
    expect(await report(file)).toBeUndefined();
    expect(await report(concat([file, Uint8Array.of(0)]))).toBe('trailing_data');
    expect(await report(flip(file.length - 6))).toBe('bad_footer');
    expect(await report(flip(file.length - 3))).toBe('footer_crc');
    expect(await report(flip(chunkEnds[2].end + 30))).toBe('index_crc');
    expect(await report(flip(h.headerLength + 18))).toBe('chunk_crc');
    expect(await report(file.subarray(0, file.length - 1))).toBe('truncated');
    expect(await verifyTok([file])).toMatchObject({ complete: true, totalFrames: 10, chunks: 3, originalLength: 12345 });
    expectFormatError(() => readTok(new TextEncoder().encode('RIFF....WAVEfmt ')), 'bad_magic');
  });

  it('detects every truncation; allowTruncated returns the intact prefix', async () => {
    const headerLength = readTokHeader(file).headerLength;
    for (let len = 0; len < file.length; len++) {
      const cut = file.subarray(0, len);
      expectFormatError(() => readTok(cut), 'truncated');
      await expect(readTokRange(cut, 0, 10)).rejects.toMatchObject({ code: 'truncated' });
      await expect(collectStream(pieces(cut, len, 30))).rejects.toMatchObject({ code: 'truncated' });
      await expect(verifyTok(pieces(cut, len, 30))).rejects.toMatchObject({ code: 'truncated' });
      const expected = chunkEnds.filter((c) => c.end <= len).at(-1)?.frames ?? 0;
      if (len < headerLength) {
        expectFormatError(() => readTok(cut, { allowTruncated: true }), 'truncated');
        continue;
      }
      const r = readTok(cut, { allowTruncated: true });
      expect(await verifyTok([cut], { allowTruncated: true })).toMatchObject({ complete: false, totalFrames: expected, problem: { code: 'truncated' } });
      expect(r.complete).toBe(false);
      expect(r.problem?.code).toBe('truncated');
      expect(r.originalLength).toBeNull();
      expect(r.tokens.numFrames, `length ${len}`).toBe(expected);
      expect(r.tokens.codes).toEqual(sliceFrames(tokens, 0, expected));
      const s = await collectStream(pieces(cut, len, 30), { allowTruncated: true });
      expect(assemble(3, s.events).codes).toEqual(r.tokens.codes);
      expect(s.events.at(-1)).toMatchObject({ type: 'end', complete: false, totalFrames: expected });
      const f = await openTok(cut, { allowTruncated: true });
      expect(f.complete).toBe(false);
      expect(f.totalFrames).toBe(expected);
      expect((await f.readRange(1, 100)).codes).toEqual(sliceFrames(tokens, Math.min(1, expected), expected));
    }
  });

  it('a streaming reader yields the good chunks before the error', async () => {
    const bad = file.slice();
    bad[chunkEnds[1].end + 17] ^= 1; // inside the third chunk
    for (const source of [pieces(bad, 1, 7), [bad]]) {
      const seen: TokStreamEvent[] = [];
      await expect(
        (async () => {
          for await (const ev of readTokStream(source)) seen.push(ev);
        })(),
      ).rejects.toMatchObject({ code: 'chunk_crc' });
      expect(assemble(3, seen).codes).toEqual(sliceFrames(tokens, 0, 8));
    }
  });

  it('stops a stream at the magic bytes when the upload is not a .tok file', async () => {
    async function* wav(): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('RIFF');
      throw new Error('the reader should have stopped before asking for more');
    }
    await expect(collectStream(wav())).rejects.toMatchObject({ code: 'bad_magic' });
  });

  it('throws only TokFormatError on random garbage and random multi-byte damage', async () => {
    const r = rng(7);
    for (let i = 0; i < 300; i++) {
      const garbage = new Uint8Array(Math.floor(r() * 200)).map(() => Math.floor(r() * 256));
      if (i % 2) garbage.set(file.subarray(0, Math.min(garbage.length, 16)));
      expectFormatError(() => readTok(garbage, { allowDamaged: true }));
      const bad = file.slice();
      for (let j = 0; j < 1 + Math.floor(r() * 6); j++) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
      if (bad.every((v, j) => v === file[j])) continue;
      expectFormatError(() => readTok(bad));
    }
  });

  it('reads a later minor version and ignores header fields it does not know', async () => {
    const empty = await encodeTok(fields(), { numCodebooks: 3, numFrames: 0, codes: new Int32Array(0) }, { originalLength: 0 });
    const h = readTokHeader(empty);
    // Header of version 1.1 with 4 extra bytes at the end of the body, then the same index and a re-pointed footer.
    const header = new Uint8Array(h.headerLength + 4);
    header.set(empty.subarray(0, h.headerLength - 4));
    header[9] = 1;
    const dv = new DataView(header.buffer);
    dv.setUint32(12, dv.getUint32(12, true) + 4, true);
    header.set([1, 2, 3, 4], h.headerLength - 4);
    dv.setUint32(header.length - 4, crc32(header, 0, header.length - 4), true);
    const index = empty.subarray(h.headerLength, empty.length - 16);
    const footer = new Uint8Array(16);
    const fdv = new DataView(footer.buffer);
    fdv.setBigUint64(0, BigInt(header.length), true);
    footer.set(empty.subarray(empty.length - 8, empty.length - 4), 8);
    fdv.setUint32(12, crc32(footer, 0, 12), true);
    const v11 = concat([header, index, footer]);
    const r = readTok(v11);
    expect(r.header.version).toEqual({ major: 1, minor: 1 });
    expect(r.header.modelName).toBe('unit-model');
    expect(r.complete).toBe(true);
    // ... while a 1.0 header with extra bytes is malformed.
    header[9] = 0;
    dv.setUint32(header.length - 4, crc32(header, 0, header.length - 4), true);
    expectFormatError(() => readTok(concat([header, index, footer])), 'bad_header');
  });

  it('enforces configurable reader limits', async () => {
    expectFormatError(() => readTok(file, { limits: { maxHeaderBytes: 50 } }), 'limit_exceeded');
    expectFormatError(() => readTok(file, { limits: { maxChunkBytes: 10 } }), 'limit_exceeded');
    expectFormatError(() => readTok(file, { limits: { maxTotalCodes: 29 } }), 'limit_exceeded');
    expect(readTok(file, { limits: { maxTotalCodes: 30 } }).tokens.numFrames).toBe(10);
  });
});

describe('.tok seeking', () => {
  const tokens = randomTokens(4, 1000, 4096, 9);
  let buf: Uint8Array;
  let dir: string;
  let path: string;

  beforeAll(async () => {
    buf = await writeInPieces(fields({ numCodebooks: 4, codebookSize: 4096, framesPerChunk: 64 }), tokens, 11, [100, 130, 131]);
    dir = await mkdtemp(join(tmpdir(), 'tokfile-'));
    path = join(dir, 'seek.tok');
    await writeFile(path, buf);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const ranges: [number, number][] = [[0, 1000], [0, 1], [63, 2], [64, 64], [99, 33], [130, 1], [500, 0], [999, 5], [990, 100], [1000, 3], [2000, 1]];

  it('returns the same tokens as the full read, from bytes, a path and a FileHandle', async () => {
    const full = readTok(buf).tokens;
    const r = rng(13);
    const random: [number, number][] = Array.from({ length: 40 }, () => [Math.floor(r() * 1000), Math.floor(r() * 300)]);
    const fh = await open(path, 'r');
    try {
      const fromHandle = await openTok(fh);
      const fromPath = await openTok(path);
      const fromBytes = await openTok(buf);
      for (const [start, count] of [...ranges, ...random]) {
        const s = Math.min(start, 1000);
        const want = sliceFrames(full, s, Math.min(1000, start + count));
        for (const f of [fromHandle, fromPath, fromBytes]) {
          expect(f.complete).toBe(true);
          expect(f.totalFrames).toBe(1000);
          const got = await f.readRange(start, count);
          expect(got.numFrames).toBe(want.length / 4);
          expect(got.codes).toEqual(want);
        }
      }
      await fromPath.close();
      await fromHandle.close(); // a caller's handle stays open
      expect((await fh.stat()).size).toBe(buf.length);
    } finally {
      await fh.close();
    }
    const one = await readTokRange(path, 200, 10);
    expect(one).toMatchObject({ startFrame: 200, totalFrames: 1000, complete: true });
    expect(one.tokens.codes).toEqual(sliceFrames(full, 200, 210));
  });

  it('reads only the chunks it needs', async () => {
    const fh = await open(path, 'r');
    let bytesRead = 0;
    const counting = {
      stat: () => fh.stat(),
      read: (b: Uint8Array, off: number, len: number, pos: number) => {
        bytesRead += len;
        return fh.read(b, off, len, pos);
      },
    } as unknown as FileHandle;
    try {
      const f = await openTok(counting);
      const afterOpen = bytesRead;
      await f.readRange(500, 10);
      expect(bytesRead - afterOpen).toBeLessThanOrEqual(2 * (20 + (64 * 4 * 12) / 8));
      expect(bytesRead).toBeLessThan(buf.length / 3);
    } finally {
      await fh.close();
    }
  });

  it('seeks in a file without its footer by walking chunk headers', async () => {
    const cut = buf.subarray(0, buf.length - 40);
    await expect(openTok(cut)).rejects.toMatchObject({ code: 'truncated' });
    const f = await openTok(cut, { allowTruncated: true });
    expect(f.complete).toBe(false);
    expect(f.totalFrames).toBe(1000);
    expect((await f.readRange(900, 50)).codes).toEqual(sliceFrames(tokens, 900, 950));
  });

  it('checks the chunks it reads', async () => {
    const bad = buf.slice();
    bad[readTokHeader(buf).headerLength + 30] ^= 4; // first chunk's payload
    const f = await openTok(bad); // index intact: opens fine
    await expect(f.readRange(0, 1)).rejects.toMatchObject({ code: 'chunk_crc' });
    expect((await f.readRange(700, 5)).codes).toEqual(sliceFrames(tokens, 700, 705));
  });

  it('maps a time to a frame and rejects negative ranges', async () => {
    const h = readTokHeader(buf);
    expect(frameAtTime(h, 0)).toBe(0);
    expect(frameAtTime(h, 1)).toBe(75);
    expect(frameAtTime(h, 0.0133)).toBe(0);
    expect(frameAtTime(h, 0.0134)).toBe(1);
    const f = await openTok(buf);
    await expect(f.readRange(-1, 3)).rejects.toBeInstanceOf(CodecError);
    await expect(f.readRange(0, 1.5)).rejects.toBeInstanceOf(CodecError);
  });
});

describe('.tok streaming reader', () => {
  it('equals the full reader for random piece sizes', async () => {
    const tokens = randomTokens(8, 777, 1024, 21);
    const buf = await writeInPieces(fields({ numCodebooks: 8, codebookSize: 1024, framesPerChunk: 50 }), tokens, 22, [123]);
    const full = readTok(buf);
    for (const [seed, maxPiece] of [[1, 1], [2, 13], [3, 500], [4, 100000]]) {
      const s = await collectStream(pieces(buf, seed, maxPiece));
      expect(s.events[0]).toEqual({ type: 'header', header: full.header });
      expect(assemble(8, s.events)).toEqual(full.tokens);
      expect(s.events.at(-1)).toEqual({ type: 'end', complete: true, totalFrames: 777, originalLength: 999 });
    }
    // Node streams and plain arrays of Buffers work as sources too.
    const s = await collectStream((async function* () { yield Buffer.from(buf); })());
    expect(assemble(8, s.events).codes).toEqual(tokens.codes);
  });

  it('yields each chunk as soon as it has arrived', async () => {
    const tokens = randomTokens(2, 40, 1000, 23);
    const buf = await encodeTok(fields({ numCodebooks: 2, framesPerChunk: 10 }), tokens, { originalLength: 1 });
    const h = readTokHeader(buf);
    const firstChunkEnd = h.headerLength + 20 + Math.ceil((10 * 2 * 10) / 8);
    let delivered = 0;
    async function* slow(): AsyncGenerator<Uint8Array> {
      for (; delivered < buf.length; delivered++) yield buf.subarray(delivered, delivered + 1);
    }
    for await (const ev of readTokStream(slow())) {
      if (ev.type === 'tokens' && ev.firstFrame === 0) {
        expect(delivered).toBe(firstChunkEnd - 1);
        break;
      }
    }
  });
});

describe('model check', () => {
  it('accepts the writing model and a model with more codebooks', async () => {
    const h = readTokHeader(await encodeTok(fields(), randomTokens(3, 2, 1000, 1), { originalLength: 1 }));
    expect(() => assertTokMatchesModel(h, { name: 'unit-model', sha256: SHA.toUpperCase(), sampleRate: 24000, hopLength: 320, codebookSize: 1000, numCodebooks: 8 })).not.toThrow();
  });

  it('names both models when they differ', async () => {
    const h = readTokHeader(await encodeTok(fields(), randomTokens(3, 2, 1000, 1), { originalLength: 1 }));
    const other = 'f'.repeat(64);
    let err: unknown;
    try {
      assertTokMatchesModel(h, { name: 'other-model', sha256: other, numCodebooks: 2 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokModelMismatchError);
    expect(err).toBeInstanceOf(CodecError);
    const m = err as TokModelMismatchError;
    expect(m.code).toBe('model_mismatch');
    expect(m.message).toContain(`written by model "unit-model" (sha256 ${SHA})`);
    expect(m.message).toContain(`decoded with model "other-model" (sha256 ${other})`);
    expect(m.mismatches).toEqual(['sha256', 'file has 3 codebooks, model 2']);
    expect(() => assertTokMatchesModel(h, { name: 'unit-model', sha256: SHA, sampleRate: 16000 })).toThrow(/sampleRate 24000 vs 16000/);
  });
});
