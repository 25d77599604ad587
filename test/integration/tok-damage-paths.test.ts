/**
 * Damaged .tok files through the real ways in: `POST /v1/decode` answers every kind of damage with
 * 422 `invalid_tok` before any audio (never 200 and a cut transfer), and `tokstream info` reports it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTok, readTokHeader } from '../../codec/tokfile.js';
import { readPcm, speechWav } from '../helpers/fixtures.js';
import { fetchBody, startApi, type TestApi } from '../helpers/http.js';
import { ensureBuilt } from '../helpers/prep.js';

const BIN = new URL('../../bin/tokstream.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tokstream-tok-damage-'));
let api: TestApi;
let file: Uint8Array;
let samples: number;

beforeAll(async () => {
  ensureBuilt();
  api = await startApi();
  const wav = speechWav('Damaged token files.');
  const pcm = readPcm(wav, 24000);
  samples = pcm.length;
  const m = api.model.manifest;
  const tokens = await api.model.encode(pcm, 24000);
  // small chunks, so that the file has several and damage can sit in the first, a middle or the last
  file = await encodeTok(
    { modelName: m.name, modelSha256: api.model.hash, sampleRate: m.sampleRate, hopLength: m.hopLength, numCodebooks: m.numCodebooks, codebookSize: m.codebookSize, originalSampleRate: 24000, framesPerChunk: 16 },
    tokens,
    { originalLength: samples },
  );
}, 120_000);

afterAll(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function decodeStatus(body: Uint8Array): Promise<{ status: number; code?: string; bytes: number }> {
  const res = await fetch(`${api.url}/v1/decode`, { method: 'POST', body: fetchBody(body) });
  const out = Buffer.from(await res.arrayBuffer());
  return res.status === 200 ? { status: 200, bytes: out.length } : { status: res.status, code: JSON.parse(out.toString()).error.code, bytes: out.length };
}

function info(bytes: Uint8Array, ...flags: string[]): { code: number | null; out: { complete: boolean; problem?: { code: string } } } {
  const p = join(dir, 'x.tok');
  writeFileSync(p, bytes);
  const r = spawnSync(process.execPath, [BIN, 'info', p, '--json', ...flags], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: JSON.parse(r.stdout) };
}

describe('/v1/decode verifies the whole .tok before its status line', () => {
  it('a good file decodes completely (200, the whole length)', async () => {
    const r = await decodeStatus(file);
    expect(r.status).toBe(200);
    expect(r.bytes).toBe(44 + 2 * samples);
  }, 60_000);

  it('every single-byte change, every truncation and a trailing byte get 422 invalid_tok', async () => {
    const verdicts = new Map<string, number>();
    const check = async (what: string, bytes: Uint8Array) => {
      const r = await decodeStatus(bytes);
      expect({ status: r.status, code: r.code }, what).toEqual({ status: 422, code: 'invalid_tok' });
      verdicts.set(r.code!, (verdicts.get(r.code!) ?? 0) + 1);
    };
    for (let i = 0; i < file.length; i++) {
      const bad = file.slice();
      bad[i] ^= 0x01 << (i % 8);
      await check(`byte ${i} changed`, bad);
    }
    for (let len = 1; len < file.length; len++) await check(`cut to ${len} bytes`, file.subarray(0, len));
    await check('one trailing byte', Buffer.concat([file, Buffer.of(0)]));
    expect(verdicts.get('invalid_tok')).toBe(2 * file.length);
  }, 300_000);
});

describe('tokstream info verifies what it reports', () => {
  it('reports chunk, index and footer damage and trailing data precisely, with exit 3', () => {
    const h = readTokHeader(file);
    const flip = (i: number) => {
      const b = file.slice();
      b[i] ^= 0x10;
      return b;
    };
    const good = info(file);
    expect(good.code).toBe(0);
    expect(good.out).toMatchObject({ complete: true, frames: Math.ceil(samples / 320) });
    const footerAt = file.length - 16;
    const cases: [string, Uint8Array, string][] = [
      ['first chunk', flip(h.headerLength + 30), 'chunk_crc'],
      ['a middle chunk', flip(Math.floor((h.headerLength + footerAt) / 2) - 200), 'chunk_crc'],
      ['the index', flip(footerAt - 6), 'index_crc'],
      ['the footer tag', flip(footerAt + 8), 'bad_footer'],
      ['the footer CRC', flip(footerAt + 13), 'footer_crc'],
      ['one trailing byte', Buffer.concat([file, Buffer.of(0)]), 'trailing_data'],
      ['cut mid-file', file.subarray(0, Math.floor(file.length / 2)), 'truncated'],
      ['cut before the footer', file.subarray(0, footerAt), 'truncated'],
    ];
    for (const [what, bytes, code] of cases) {
      const r = info(bytes);
      expect({ exit: r.code, complete: r.out.complete, problem: r.out.problem?.code }, what).toEqual({ exit: 3, complete: false, problem: code });
    }
    // --fast reads the header, index and footer only: chunk damage is what it cannot see
    expect(info(flip(h.headerLength + 30), '--fast')).toMatchObject({ code: 0, out: { complete: true } });
  }, 120_000);
});
