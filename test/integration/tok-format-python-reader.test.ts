import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTok, TokWriter, type TokHeaderFields } from '../../codec/tokfile.js';
import type { TokenBlock } from '../../codec/pure/types.js';

const run = promisify(execFile);
const READER_DIR = resolve('clients/python');
const READER = join(READER_DIR, 'tokstream_reader.py');
// Debian's interpreter has numpy; plain `python3` may not, and needs to handle headers anyway.
const PY_NUMPY = '/usr/bin/python3';

interface Case {
  name: string;
  fields: TokHeaderFields;
  frames: number;
  flushAt: number[];
  originalLength: number | null;
}

const SHA = 'c0ffee'.repeat(10) + 'abcd';
const base = { modelName: 'py-model', modelSha256: SHA, sampleRate: 24000, hopLength: 320, originalSampleRate: 22050 };
const cases: Case[] = [
  { name: 'binary', fields: { ...base, numCodebooks: 1, codebookSize: 2, framesPerChunk: 7 }, frames: 50, flushAt: [], originalLength: 16000 },
  { name: 'k8-1000', fields: { ...base, numCodebooks: 8, codebookSize: 1000, framesPerChunk: 32, metadata: { lang: 'fr', titre: 'Ça va' } }, frames: 301, flushAt: [5, 40], originalLength: 44100 },
  { name: 'k4-65536', fields: { ...base, numCodebooks: 4, codebookSize: 65536, framesPerChunk: 16 }, frames: 65, flushAt: [], originalLength: null },
  { name: 'k2-4096', fields: { ...base, numCodebooks: 2, codebookSize: 4096 }, frames: 600, flushAt: [1], originalLength: 12 },
  { name: 'wide', fields: { ...base, numCodebooks: 3, codebookSize: 2 ** 31, framesPerChunk: 5 }, frames: 23, flushAt: [], originalLength: 1 },
  { name: 'empty', fields: { ...base, numCodebooks: 2, codebookSize: 1024 }, frames: 0, flushAt: [], originalLength: 0 },
];

function tokensFor(c: Case, seed: number): TokenBlock {
  const K = c.fields.numCodebooks;
  const codes = new Int32Array(K * c.frames);
  let s = seed;
  for (let i = 0; i < codes.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    codes[i] = Math.floor((s / 2 ** 32) * c.fields.codebookSize);
  }
  if (codes.length) codes[0] = c.fields.codebookSize - 1;
  return { numCodebooks: K, numFrames: c.frames, codes };
}

async function writeCase(c: Case, tokens: TokenBlock): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const w = new TokWriter(c.fields, (b) => {
    parts.push(b);
  });
  const K = tokens.numCodebooks;
  const cuts = [0, ...c.flushAt, c.frames];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const n = cuts[i + 1] - cuts[i];
    const codes = new Int32Array(K * n);
    for (let k = 0; k < K; k++) codes.set(tokens.codes.subarray(k * c.frames + cuts[i], k * c.frames + cuts[i + 1]), k * n);
    await w.write({ numCodebooks: K, numFrames: n, codes });
    await w.flush();
  }
  await w.finish({ originalLength: c.originalLength });
  return Buffer.concat(parts);
}

/** Minimal .npy reader: little-endian int64, C order. */
function parseNpy(buf: Buffer): { shape: number[]; data: BigInt64Array } {
  expect(buf.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
  const major = buf[6];
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const dict = buf.subarray(major === 1 ? 10 : 12, start).toString('latin1');
  expect(dict).toMatch(/'descr': '<i8'/);
  expect(dict).toMatch(/'fortran_order': False/);
  const shape = (/'shape': \(([^)]*)\)/.exec(dict) as RegExpExecArray)[1].split(',').filter((x) => x.trim()).map(Number);
  const bytes = buf.subarray(start);
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  return { shape, data: new BigInt64Array(aligned.buffer) };
}

describe('python reader against the TS writer', () => {
  let dir: string;
  const written = new Map<string, { tokens: TokenBlock; buf: Uint8Array; path: string }>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokpy-'));
    let seed = 1;
    for (const c of cases) {
      const tokens = tokensFor(c, seed++);
      const buf = await writeCase(c, tokens);
      const path = join(dir, `${c.name}.tok`);
      await writeFile(path, buf);
      written.set(c.name, { tokens, buf, path });
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the same tokens and header as the TS reader', async () => {
    for (const c of cases) {
      const { tokens, buf, path } = written.get(c.name)!;
      const npy = join(dir, `${c.name}.npy`);
      const { stdout } = await run(PY_NUMPY, [READER, path, '--dump-npy', npy]);
      const h = JSON.parse(stdout);
      const ts = readTok(buf);
      expect(h, c.name).toEqual({
        version: [1, 0],
        model_name: ts.header.modelName,
        model_sha256: SHA,
        sample_rate: 24000,
        hop_length: 320,
        num_codebooks: c.fields.numCodebooks,
        codebook_size: c.fields.codebookSize,
        bits_per_code: ts.header.bitsPerCode,
        frames_per_chunk: ts.header.framesPerChunk,
        original_sample_rate: 22050,
        metadata: c.fields.metadata ?? {},
        header_length: ts.header.headerLength,
        num_chunks: expect.any(Number),
        total_frames: c.frames,
        original_length: c.originalLength,
        complete: true,
        problem: null,
      });
      const { shape, data } = parseNpy(await readFile(npy));
      expect(shape, c.name).toEqual([c.fields.numCodebooks, c.frames]);
      expect(Array.from(data, Number), c.name).toEqual(Array.from(tokens.codes));
    }
  });

  it('works as a module and detects every single-byte corruption', async () => {
    const small = written.get('binary')!.buf;
    // One interpreter run loops over every byte of a small multi-chunk file (7 chunks).
    const script = `
import sys
sys.path.insert(0, ${JSON.stringify(READER_DIR)})
from tokstream_reader import read_tok, TokFormatError
data = open(sys.argv[1], "rb").read()
header, codes = read_tok(data)
assert codes.shape == (1, 50) and header["complete"], header
codes_seen = set()
for i in range(len(data)):
    for mask in (0x01, 0x80, 0xFF):
        bad = bytearray(data)
        bad[i] ^= mask
        try:
            read_tok(bytes(bad))
        except TokFormatError as e:
            codes_seen.add(e.code)
            continue
        raise SystemExit("corruption at byte %d mask %d went unnoticed" % (i, mask))
print(len(data) * 3, sorted(codes_seen))
`;
    const path = join(dir, 'small-for-py.tok');
    await writeFile(path, small);
    const { stdout } = await run(PY_NUMPY, ['-B', '-c', script, path]); // -B: leave no __pycache__ in clients/python
    const [count, ...rest] = stdout.trim().split(' ');
    expect(Number(count)).toBe(small.length * 3);
    expect(rest.join(' ')).toContain('chunk_crc');
    expect(rest.join(' ')).toContain('header_crc');
  });

  it('reports a corrupted file with exit status 1 and a clear message', async () => {
    const { buf } = written.get('k8-1000')!;
    const bad = Buffer.from(buf);
    bad[readTok(buf).header.headerLength + 40] ^= 0x10;
    const path = join(dir, 'bad.tok');
    await writeFile(path, bad);
    const err = await run(PY_NUMPY, [READER, path]).catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 1 });
    expect((err as { stderr: string }).stderr).toMatch(/^error: \.tok chunk_crc at byte \d+: chunk checksum mismatch/);
  });

  it('reads the intact prefix of a cut-off file only when asked', async () => {
    const { buf, tokens } = written.get('k8-1000')!;
    const path = join(dir, 'cut.tok');
    await writeFile(path, buf.subarray(0, Math.floor(buf.length * 0.6)));
    const strict = await run(PY_NUMPY, [READER, path]).catch((e: { code: number; stderr: string }) => e);
    expect(strict).toMatchObject({ code: 1 });
    expect((strict as { stderr: string }).stderr).toContain('.tok truncated');
    const npy = join(dir, 'cut.npy');
    const { stdout } = await run(PY_NUMPY, [READER, path, '--allow-truncated', '--dump-npy', npy]);
    const h = JSON.parse(stdout);
    const ts = readTok(buf.subarray(0, Math.floor(buf.length * 0.6)), { allowTruncated: true });
    expect(h).toMatchObject({ complete: false, total_frames: ts.tokens.numFrames, original_length: null });
    expect(h.total_frames).toBeGreaterThan(0);
    const { shape, data } = parseNpy(await readFile(npy));
    expect(shape).toEqual([8, ts.tokens.numFrames]);
    const want: number[] = [];
    for (let k = 0; k < 8; k++) want.push(...tokens.codes.subarray(k * 301, k * 301 + ts.tokens.numFrames));
    expect(Array.from(data, Number)).toEqual(want);
  });

  it('prints the header with either interpreter (the header path needs no numpy)', async () => {
    const { path } = written.get('k4-65536')!;
    for (const py of [PY_NUMPY, 'python3']) {
      const { stdout } = await run(py, [READER, path]);
      expect(JSON.parse(stdout)).toMatchObject({ model_name: 'py-model', num_codebooks: 4, total_frames: 65, complete: true, original_length: null });
    }
  });
});
