/**
 * The same files through the three ways in (CLI `encode`, HTTP `POST /v1/encode`, `tokstream prep run`)
 * must get the same verdict: encoded (with the same length), or the same typed error.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTok } from '../../codec/tokfile.js';
import { speechWav } from '../helpers/fixtures.js';
import { buildWav, ffmpegWav, riffChunks, toRifx, withExtraChunks, writeVariant } from '../helpers/wav-variants.js';
import { startApi, type TestApi } from '../helpers/http.js';
import { ensureBuilt, runCli } from '../helpers/prep.js';

const BIN = new URL('../../bin/tokstream.js', import.meta.url).pathname;

interface Verdict {
  /** 'ok' or the error code */
  code: string;
  frames?: number;
}

const dir = mkdtempSync(join(tmpdir(), 'tokstream-verdict-'));
const inputs = join(dir, 'in');
/** file name -> the verdict every path must give */
const expected: Record<string, string> = {};
let api: TestApi;

function add(name: string, bytes: Buffer, verdict: string): void {
  writeVariant(inputs, name, bytes);
  expected[name] = verdict;
}

beforeAll(async () => {
  ensureBuilt();
  mkdirSync(inputs, { recursive: true });
  const speech = speechWav('Every path gives the same answer.');
  const pcm = readFileSync(speech);
  const float = readFileSync(ffmpegWav(speech, 'pcm_f32le', dir));
  add('pcm16.wav', pcm, 'ok');
  add('rifx-pcm16.wav', toRifx(pcm), 'ok');
  add('rifx-float32.wav', toRifx(float), 'ok');
  add('two-list.wav', withExtraChunks(pcm), 'ok');
  add('pcm24-extensible.wav', readFileSync(ffmpegWav(speech, 'pcm_s24le', dir)), 'ok');
  add('mulaw.wav', readFileSync(ffmpegWav(speech, 'pcm_mulaw', dir)), 'ok');
  add('alaw.wav', readFileSync(ffmpegWav(speech, 'pcm_alaw', dir)), 'ok');
  add('ima-adpcm.wav', readFileSync(ffmpegWav(speech, 'adpcm_ima_wav', dir)), 'ok');
  // mu-law in a RIFX file: ffmpeg would misread it, and it is not read in-process
  const mulawChunks = riffChunks(readFileSync(ffmpegWav(speech, 'pcm_mulaw', dir)));
  add('rifx-mulaw.wav', toRifx(buildWav(mulawChunks)), 'unsupported_media');
  const nan = Buffer.from(float);
  nan.writeFloatLE(NaN, nan.length - 400);
  add('nan-float.wav', nan, 'invalid_audio');
  add('no-data.wav', buildWav(riffChunks(pcm).filter((c) => c.id === 'fmt ')), 'invalid_audio');
  add('no-fmt.wav', buildWav(riffChunks(pcm).filter((c) => c.id === 'data')), 'invalid_audio');
  const random = Buffer.alloc(6000);
  for (let i = 0; i < random.length; i++) random[i] = (i * 7919 + 13) & 0xff;
  add('random.bin', random, 'unsupported_media');
  add('empty.wav', Buffer.alloc(0), 'invalid_audio');
  api = await startApi();
}, 120_000);

afterAll(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One CLI run per file, from a folder that is not the repository and without TOKSTREAM_MODELS_DIR. */
function viaCli(name: string): Verdict {
  const out = join(dir, `${name}.cli.tok`);
  const env = { ...process.env };
  delete env.TOKSTREAM_MODELS_DIR;
  const r = spawnSync(process.execPath, [BIN, 'encode', join(inputs, name), '-o', out, '--threads', '1'], { cwd: tmpdir(), env, encoding: 'utf8', timeout: 120_000 });
  if (r.status === 0) return { code: 'ok', frames: readTok(readFileSync(out)).tokens.numFrames };
  expect(r.status, r.stderr).toBe(3);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  return { code: /^tokstream: ([a-z_]+):/.exec(r.stderr)?.[1] ?? `unparsed: ${r.stderr}` };
}

async function viaHttp(name: string): Promise<Verdict> {
  const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body: readFileSync(join(inputs, name)) });
  const body = new Uint8Array(await res.arrayBuffer());
  if (res.status === 200) return { code: 'ok', frames: readTok(body).tokens.numFrames };
  return { code: JSON.parse(Buffer.from(body).toString()).error.code };
}

async function viaPrep(): Promise<Record<string, Verdict>> {
  const out = join(dir, 'prep-out');
  const r = await runCli(['run', '--input', inputs, '--out', out, '--workers', '1', '--threads', '1', '--quiet']);
  expect(r.code, r.stderr).toBe(0);
  const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8'));
  const verdicts: Record<string, Verdict> = {};
  for (const f of stats.failures as { id: string; code: string }[]) verdicts[f.id] = { code: f.code };
  const index = readFileSync(join(out, 'index.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  for (const e of index as { id: string; frames: number }[]) verdicts[e.id] = { code: 'ok', frames: e.frames };
  return verdicts;
}

describe('the same input gets the same verdict on every path', () => {
  it('CLI, HTTP and prep agree, file by file, with the expected verdict', async () => {
    const prep = await viaPrep();
    const rows: string[] = [];
    for (const name of Object.keys(expected)) {
      const cli = viaCli(name);
      const http = await viaHttp(name);
      rows.push(`${name}: expected ${expected[name]}, cli ${cli.code}/${cli.frames}, http ${http.code}/${http.frames}, prep ${prep[name]?.code}/${prep[name]?.frames}`);
      expect({ cli: cli.code, http: http.code, prep: prep[name]?.code }, rows.at(-1)).toEqual({ cli: expected[name], http: expected[name], prep: expected[name] });
      if (cli.code === 'ok') expect([http.frames, prep[name].frames], rows.at(-1)).toEqual([cli.frames, cli.frames]);
    }
  }, 600_000);

  it('a big-endian WAV gives the tokens of the same samples in a little-endian one (not noise)', () => {
    const tokens = (name: string) => {
      const out = join(dir, `${name}.again.tok`);
      const r = spawnSync(process.execPath, [BIN, 'encode', join(inputs, name), '-o', out, '--threads', '1'], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      return readTok(readFileSync(out)).tokens.codes;
    };
    expect(tokens('rifx-pcm16.wav')).toEqual(tokens('pcm16.wav'));
  }, 240_000);
});
