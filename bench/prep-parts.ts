/**
 * The parts of `tokstream prep`'s cost that bench:prep sums up, measured one by one on the same
 * generated corpus (docs/benchmarks.md, "Corpus preparation"):
 *   windows    frames the encoder computes per frame of audio, full-length vs tight final windows
 *   start-up   time to a ready encoder pool; encoder-only vs all graphs
 *   decoding   grouped ffmpeg decodes, 256 KiB block writes vs a write per frame (CPU of ffmpeg and reader)
 *   CPU        one `prep run` (2 x 1): CPU per thread, ffmpeg children, time to the first window
 *   encoder    raw model throughput by chunk length; stateful vs windowed chunks per emitted frame
 *   npm run bench:prep-parts [-- --files 150 --chunks 250,375,500,750]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodecModel } from '../codec/model.js';
import { StreamEncoder } from '../codec/stream-encoder.js';
import { ffmpegDecodeGroup } from '../codec/ffmpeg-group.js';
import { EncoderPool } from '../prep/encoder-pool.js';
import { listInput } from '../prep/inputs.js';
import { encodeWhole } from '../prep/item.js';
import { runLocal, startPool } from '../prep/local.js';
import { parseOptions } from '../cli/usage.js';
import { execOptions, planOptions } from '../prep/options.js';
import { modelSettings } from '../prep/plan.js';
import { childCpuSeconds, decodeAll, makeCorpus } from './prep-corpus.js';

const { values: argv } = parseOptions(process.argv.slice(2), { files: { type: 'string' }, chunks: { type: 'string' } });
const nFiles = Number(argv.files ?? 150);
const chunkSweep = (argv.chunks ?? '250,375,500,750').split(',').map(Number);
const modelDir = 'models/default';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const work = mkdtempSync(join(tmpdir(), 'tokstream-bench-prep-parts-'));
const corpus = join(work, 'corpus');
await makeCorpus(corpus, nFiles);
const listing = await listInput(corpus);
const model = await CodecModel.load(modelDir, { intraOpThreads: 1, interOpThreads: 1, log: () => {} }, 'encoder');
const m = model.manifest;
const paths = listing.items.map((i) => i.path);
const signals = await decodeAll(paths, m.sampleRate);
const audioSamples = signals.reduce((s, x) => s + x.length, 0);
console.log(`${nFiles} files, ${(audioSamples / m.sampleRate / 3600).toFixed(3)} h (mean ${(audioSamples / m.sampleRate / nFiles).toFixed(2)} s); load average ${loadavg()[0].toFixed(1)}\n`);

// windows: what the encoder is fed, per sample of audio
for (const tightFinal of [false, true]) {
  let fed = 0;
  for (const s of signals) {
    const enc = new StreamEncoder(m, { chunkFrames: 250, tightFinal });
    for (const w of [...enc.push(s), ...enc.finish()]) fed += w.audio.length;
  }
  console.log(`windows, 250-frame chunks, ${tightFinal ? 'tight' : 'full-length'} final window: ${(fed / audioSamples).toFixed(3)} samples fed per sample of audio`);
}

// start-up
for (const workers of [1, 2]) {
  const ms: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    const pool = await EncoderPool.start({ modelDir, workers, threads: 1, provider: 'cpu', batch: 1 });
    ms.push(performance.now() - t);
    await pool.close();
  }
  console.log(`start-up: ${workers} session(s) ready in ${median(ms).toFixed(0)} ms (median of 5)`);
}
for (const parts of ['encoder', 'all'] as const) {
  const ms: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    const loaded = await CodecModel.load(modelDir, { intraOpThreads: 1, log: () => {} }, parts);
    ms.push(performance.now() - t);
    await loaded.release();
  }
  console.log(`start-up: CodecModel.load, ${parts === 'all' ? 'all four graphs' : 'encoder only'}: ${median(ms).toFixed(0)} ms (median of 5, in a warm process)`);
}

// decoding: the same files in one ffmpeg per format, block writes vs a write per frame
const byFormat = { '22.05 kHz WAV': paths.filter((f) => /utt\d+\.wav$/.test(f)), MP3: paths.filter((f) => f.endsWith('.mp3')), FLAC: paths.filter((f) => f.endsWith('.flac')) };
for (const [format, paths] of Object.entries(byFormat)) {
  const group = paths.slice(0, 64).map((path) => ({ path, pcmWav: format.includes('WAV') }));
  const row: string[] = [];
  for (const blockWrites of [false, true]) {
    const costs: number[] = [];
    for (let r = 0; r < 3; r++) {
      const [c0, k0] = [cpu(), childCpuSeconds()];
      const res = await ffmpegDecodeGroup(group, { sampleRate: m.sampleRate, timeoutMs: 60_000, maxOutputBytes: 1 << 30, blockWrites });
      if (!res.ok) throw new Error(res.reason);
      costs.push(childCpuSeconds() - k0 + cpu() - c0);
    }
    row.push(`${blockWrites ? 'blocks' : 'per frame'} ${median(costs).toFixed(2)} s`);
  }
  console.log(`decoding ${group.length} ${format} files in one ffmpeg, CPU of ffmpeg + reader (median of 3): ${row.join(', ')}`);
}

// where the CPU of one run goes (2 sessions x 1 thread)
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of readdirSync('/proc/self/task')) {
    const f = readFileSync(`/proc/self/task/${t}/stat`, 'utf8').split(') ')[1].split(' ');
    out.set(t, (Number(f[11]) + Number(f[12])) / 100);
  }
  return out;
}
{
  const out = join(work, 'out');
  const plan = planOptions({ input: corpus, out, 'models-dir': 'models' });
  const x = execOptions({ workers: '2', threads: '1', quiet: true });
  const [t0, th0, k0] = [performance.now(), threadCpu(), childCpuSeconds()];
  let firstWindow = 0;
  let before = new Map<string, number>();
  await runLocal(plan, x, () => {}, (pool) => {
    const encode = pool.encode.bind(pool);
    pool.encode = (...a) => ((firstWindow ||= performance.now() - t0), encode(...a));
    const close = pool.close.bind(pool);
    pool.close = () => ((before = before.size ? before : threadCpu()), close());
  });
  const wall = (performance.now() - t0) / 1000;
  const main = String(process.pid);
  let mainCpu = 0;
  const others: number[] = [];
  for (const [t, c] of before) {
    const used = c - (th0.get(t) ?? 0);
    if (t === main) mainCpu = used;
    else others.push(used);
  }
  others.sort((a, b) => b - a);
  console.log(
    `one prep run, 2 x 1: ${wall.toFixed(2)} s; first window sent ${firstWindow.toFixed(0)} ms after the start; CPU: encoder threads ${others.slice(0, 2).map((c) => c.toFixed(2)).join(' + ')} s, main thread ${mainCpu.toFixed(2)} s, other threads ${others.slice(2).reduce((s, c) => s + c, 0).toFixed(2)} s, ffmpeg ${(childCpuSeconds() - k0).toFixed(2)} s`,
  );
}

// encoder alternatives for prep: chunk length (raw model, 2 x 1, interleaved) and stateful chunks
{
  const pool = await startPool(modelDir, execOptions({ workers: '2', threads: '1', quiet: true }));
  const rates = new Map<number, number[]>();
  for (let r = 0; r < 3; r++) {
    for (const chunkFrames of chunkSweep) {
      const ctx = { settings: { model: modelSettings(m), codebooks: m.numCodebooks, vad: null, shardBytes: 1 << 30, chunkFrames, maxItemSec: 3600 }, pool, windowsAhead: 1 << 20 };
      await encodeWhole(signals[0], ctx);
      const t = performance.now();
      await Promise.all(signals.map((s) => encodeWhole(s, ctx)));
      rates.set(chunkFrames, [...(rates.get(chunkFrames) ?? []), audioSamples / m.sampleRate / ((performance.now() - t) / 1000)]);
    }
  }
  await pool.close();
  console.log(`raw model by chunk length (2 x 1, x real time, 3 interleaved repeats): ${[...rates].map(([c, xs]) => `${c}: ${xs.map((x) => x.toFixed(0)).join('/')}`).join(', ')}`);
}
if (m.encoder.streaming) {
  const full = await CodecModel.load(modelDir, { intraOpThreads: 1, interOpThreads: 1, log: () => {} });
  const long = signals.reduce((a, b) => (b.length > a.length ? b : a));
  const win = long.subarray(0, (250 + Math.ceil(m.encoder.leftContext / m.hopLength)) * m.hopLength);
  const chunk = long.subarray(0, 250 * m.hopLength);
  let state: Float32Array = new Float32Array(m.encoder.streaming.stateSize);
  const per: Record<string, number[]> = { windowed: [], stateful: [] };
  for (let r = 0; r < 5; r++) {
    let t = performance.now();
    for (let i = 0; i < 10; i++) await full.encodeBatch([win]);
    per.windowed.push((performance.now() - t) / 10 / 250);
    t = performance.now();
    for (let i = 0; i < 10; i++) state = (await full.encodeStepBatch([chunk], [state])).states[0];
    per.stateful.push((performance.now() - t) / 10 / 250);
  }
  console.log(`encoder per emitted frame, one thread (median of 5): ${win.length / m.hopLength}-frame window ${median(per.windowed).toFixed(3)} ms, stateful 250-frame chunk ${median(per.stateful).toFixed(3)} ms`);
  await full.release();
}
await model.release();
rmSync(work, { recursive: true, force: true });
