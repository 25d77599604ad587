import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecModel } from '../../codec/index.js';
import { openPcm } from '../../prep/decode-ahead.js';
import { npyToTokens } from '../../prep/npy.js';
import { VadSegmenter } from '../../prep/vad.js';
import { MODELS, ensureBuilt, makeCorpus, readIndex, runCli } from '../helpers/prep.js';

/** name -> bytes of every member of a tar file, read with nothing but the format. */
function readTar(path: string): Map<string, Buffer> {
  const buf = readFileSync(path);
  const out = new Map<string, Buffer>();
  for (let o = 0; o + 512 <= buf.length; ) {
    const name = buf.toString('ascii', o, o + 100).replace(/\0.*$/s, '');
    if (!name) break;
    const size = parseInt(buf.toString('ascii', o + 124, o + 136).replace(/\0.*$/s, ''), 8);
    out.set(name, buf.subarray(o + 512, o + 512 + size));
    o += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'tokstream-prep-format-'));
const corpus = join(work, 'corpus');
let files: string[] = [];
let model: CodecModel;

beforeAll(async () => {
  ensureBuilt();
  files = makeCorpus(corpus, 12);
  mkdirSync(join(corpus, 'zbad'), { recursive: true });
  writeFileSync(join(corpus, 'zbad', 'noise.mp3'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 251)));
  writeFileSync(join(corpus, 'zbad', 'empty.wav'), '');
  writeFileSync(join(corpus, 'zbad', 'notes.txt'), 'not audio at all\n');
  model = await CodecModel.load(join(MODELS, 'default'), { intraOpThreads: 1 });
});

afterAll(async () => {
  await model?.release();
  rmSync(work, { recursive: true, force: true });
});

describe('tokstream prep run on a folder', () => {
  const out = join(work, 'out-dir');
  const shardBytes = 24 * 1024;
  const plan = (dir: string) => ['run', '--input', corpus, '--out', dir, '--models-dir', MODELS, '--job-items', '5', '--shard-bytes', String(shardBytes), '--chunk-frames', '60'];

  it('writes shards, index and stats, and records every broken file with its reason', async () => {
    // batches of 4 windows, so short windows are padded to batch together; 60-frame chunks, so most files take several windows
    const r = await runCli([...plan(out), '--workers', '1', '--threads', '1', '--batch', '4', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8'));
    expect(stats.complete).toBe(true);
    expect(stats.inputs, JSON.stringify(stats.failures)).toEqual({ listed: 15, ok: 12, failed: 3 });
    const failed = Object.fromEntries(stats.failures.map((f: { id: string; code: string; reason: string }) => [f.id, f]));
    expect(Object.keys(failed).sort()).toEqual(['zbad/empty.wav', 'zbad/noise.mp3', 'zbad/notes.txt']);
    expect(failed['zbad/empty.wav'].code).toBe('invalid_audio');
    expect(failed['zbad/notes.txt'].code).toBe('unsupported_media');
    for (const f of Object.values(failed) as { reason: string }[]) expect(f.reason.length).toBeGreaterThan(5);

    const index = readIndex(out);
    expect(index.map((e) => e.id)).toEqual(files.map((f) => f.slice(corpus.length + 1)).sort());
    expect(new Set(index.map((e) => e.key)).size).toBe(12);
    expect(stats.tokens_out).toBe(index.reduce((s, e) => s + e.tokens, 0));
    expect(stats.hours_in * 3600).toBeCloseTo(index.reduce((s, e) => s + (e.duration as number), 0), 6);

    const shards = readFileSync(join(out, 'shards.txt'), 'utf8').trim().split('\n');
    expect(shards.length).toBeGreaterThan(3); // several jobs, and parts split by size
    for (const s of shards) {
      const tar = readTar(join(out, s));
      const size = statSync(join(out, s)).size;
      if (tar.size > 2) expect(size).toBeLessThanOrEqual(shardBytes);
      for (const [name, data] of tar) {
        if (!name.endsWith('.json')) continue;
        const meta = JSON.parse(data.toString());
        const tokens = npyToTokens(tar.get(`${meta.key}.tokens.npy`)!);
        expect([tokens.numCodebooks, tokens.numFrames]).toEqual([8, meta.frames]);
        expect(meta).toMatchObject({ sample_rate: 24000, codebooks: 8, model: { name: 'default', sha256: model.manifest.encoder.sha256 } });
      }
    }
  });

  it('stores exactly the tokens the model gives for each file (batched, padded windows change nothing)', async () => {
    const index = readIndex(out);
    for (const e of index.filter((_, i) => i % 4 !== 3)) {
      const path = join(corpus, e.id);
      // the same decoding as prep, one file alone (24 kHz WAV in-process, the rest by ffmpeg; prep decodes
      // short files several per ffmpeg, which gives the same samples: test/integration/prep-decode.test.ts), then one-shot encoding
      const pcmIter = await openPcm(path, 24000, 60_000);
      const parts: Float32Array[] = [];
      for await (const p of pcmIter) parts.push(p);
      const pcm = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      parts.reduce((o, p) => (pcm.set(p, o), o + p.length), 0);
      const want = await model.encode(pcm, 24000);
      expect(want.numFrames, 'a file longer than one window').toBeGreaterThan(60);
      const got = npyToTokens(readTar(join(out, 'shards', e.shard)).get(`${e.key}.tokens.npy`)!);
      expect(got.numFrames).toBe(want.numFrames);
      const diff = got.codes.reduce((n, c, i) => n + (c !== want.codes[i] ? 1 : 0), 0);
      expect(diff, `${e.id}: ${diff} of ${got.codes.length} codes differ`).toBe(0);
    }
  });

  it('gives the same bytes with other speed options (one window per run, two sessions)', async () => {
    const other = join(work, 'out-batch1');
    const r = await runCli([...plan(other), '--workers', '2', '--threads', '1', '--batch', '1', '--decode-group', '3', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const names = readFileSync(join(out, 'shards.txt'), 'utf8');
    expect(readFileSync(join(other, 'shards.txt'), 'utf8')).toBe(names);
    for (const f of [...names.trim().split('\n'), 'index.jsonl', 'stats.json']) {
      expect(readFileSync(join(other, f)).equals(readFileSync(join(out, f))), f).toBe(true);
    }
  });

  it('fails the run, not the inputs, when the model cannot load (the sessions load while inputs are decoded)', async () => {
    const models = join(work, 'broken-models');
    cpSync(join(MODELS, 'default'), join(models, 'default'), { recursive: true });
    const enc = join(models, 'default', 'encoder.onnx');
    const bytes = readFileSync(enc);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(enc, bytes);
    const dir = join(work, 'out-broken');
    const r = await runCli(['run', '--input', corpus, '--out', dir, '--models-dir', models, '--quiet']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/encoder\.onnx: sha256 [0-9a-f]+ != manifest/);
    expect(existsSync(join(dir, 'stats.json'))).toBe(false);
    // no job finished with its inputs marked failed
    expect(existsSync(join(dir, 'jobs')) ? readdirSync(join(dir, 'jobs')) : []).toEqual([]);
  });

  it('is readable with only numpy and tarfile (clients/python/load_shards.py)', () => {
    const lines = execFileSync('/usr/bin/python3', [join(import.meta.dirname, '..', '..', 'clients', 'python', 'load_shards.py'), out], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const index = readIndex(out);
    expect(lines.map((l) => l.key)).toEqual(index.map((e) => e.key));
    for (const [i, l] of lines.entries()) {
      expect(l.dtype).toBe('uint16');
      expect(l.shape).toEqual([8, index[i].frames]);
      const tokens = npyToTokens(readTar(join(out, 'shards', index[i].shard)).get(`${l.key}.tokens.npy`)!);
      expect(l.sum).toBe(tokens.codes.reduce((s, c) => s + c, 0));
    }
  });
});

describe('tokstream prep run on a JSONL manifest', () => {
  it('carries ids, offsets and metadata, segments with VAD, and records bad lines', async () => {
    const long = join(work, 'long.flac');
    // three utterances with 1 s and 0.8 s pauses, 16 kHz FLAC
    execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', files[0], '-i', files[1], '-i', files[5], '-filter_complex',
      '[0]aresample=24000,apad=pad_dur=1[a];[1]aresample=24000,apad=pad_dur=0.8[b];[2]aresample=24000[c];[a][b][c]concat=n=3:v=0:a=1', '-ar', '16000', long]);
    const manifest = join(work, 'manifest.jsonl');
    writeFileSync(manifest, [
      JSON.stringify({ path: long, id: 'book-1', speaker: 'ann', lang: 'en' }),
      JSON.stringify({ path: long, id: 'book-1-part', start: 0.5, end: 2.5, speaker: 'ann' }),
      '{"path": ',
      JSON.stringify({ path: 'nowhere.wav', id: 'gone' }),
      JSON.stringify({ path: long, id: 'book-1' }),
      JSON.stringify({ path: long, id: 'late', start: 500 }),
    ].join('\n') + '\n');

    const plain = join(work, 'out-manifest');
    let r = await runCli(['run', '--input', manifest, '--out', plain, '--models-dir', MODELS, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const idx = readIndex(plain);
    expect(idx.map((e) => e.key)).toEqual(['book-1', 'book-1-part']);
    expect(idx[1]).toMatchObject({ start: 0.5, end: 2.5, duration: 2, frames: 150 });
    const meta = JSON.parse(readTar(join(plain, 'shards', idx[0].shard)).get('book-1.json')!.toString());
    expect(meta).toMatchObject({ id: 'book-1', source: long, start: 0, meta: { speaker: 'ann', lang: 'en' } });
    let stats = JSON.parse(readFileSync(join(plain, 'stats.json'), 'utf8'));
    expect(stats.failures.map((f: { id: string; code: string }) => `${f.id}:${f.code}`)).toEqual(['line 3:invalid_manifest', 'gone:unreadable', 'book-1:invalid_manifest', 'late:invalid_argument']);

    const seg = join(work, 'out-vad');
    r = await runCli(['run', '--input', manifest, '--out', seg, '--models-dir', MODELS, '--vad', '--vad-min-sec', '0.5', '--vad-max-sec', '2', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const segs = readIndex(seg).filter((e) => e.id === 'book-1');
    expect(segs.length).toBeGreaterThanOrEqual(4); // three utterances, each longer than 2 s gets cut
    for (const s of segs) {
      expect(s.duration as number).toBeGreaterThanOrEqual(0.5);
      expect(s.duration as number).toBeLessThanOrEqual(2.0001);
      expect(s.key).toMatch(/^book-1-\d{4}$/);
    }
    // the pauses are not in any segment
    const covered = segs.reduce((sum, s) => sum + (s.duration as number), 0);
    stats = JSON.parse(readFileSync(join(seg, 'stats.json'), 'utf8'));
    expect(covered).toBeLessThan(idx[0].duration as number - 1.5);
    expect(stats.vad).toMatchObject({ minSec: 0.5, maxSec: 2 });
  });
});

describe('VadSegmenter', () => {
  const rate = 24000;
  const tone = (sec: number, amp = 0.3) => Float32Array.from({ length: Math.round(sec * rate) }, (_, i) => amp * Math.sin((2 * Math.PI * 220 * i) / rate));
  const concat = (...xs: Float32Array[]) => {
    const out = new Float32Array(xs.reduce((s, x) => s + x.length, 0));
    xs.reduce((o, x) => (out.set(x, o), o + x.length), 0);
    return out;
  };

  it('cuts at pauses, splits long speech at max duration, drops and counts short blips', () => {
    const sig = concat(tone(1.5), tone(0.6, 0), tone(5.2), tone(0.6, 0), tone(0.2), tone(1, 0));
    const vad = new VadSegmenter(rate, 320, { thresholdDb: -40, minSec: 0.5, maxSec: 2, minSilenceSec: 0.3, padSec: 0.1 });
    const segs = [];
    for (let o = 0; o < sig.length; o += 7777) segs.push(...vad.push(sig.subarray(o, o + 7777)));
    segs.push(...vad.finish());
    const durs = segs.map((s) => s.pcm.length / rate);
    expect(durs[0]).toBeCloseTo(1.5 + 0.1, 1); // starts at 0, so only the trailing 0.1 s pad
    expect(durs.slice(1).every((d) => d <= 2 + 1e-9)).toBe(true);
    expect(durs.slice(1).reduce((a, b) => a + b, 0)).toBeCloseTo(5.2 + 0.2, 1);
    expect(vad.dropped).toBe(1);
    for (const s of segs) expect(s.start % 320).toBe(0);
    expect(Array.from(segs[0].pcm.subarray(2400, 2410))).toEqual(Array.from(sig.subarray(segs[0].start + 2400, segs[0].start + 2410)));
  });
});
