/**
 * Corpus preprocessing throughput: audio-hours per hour of `tokstream prep run`
 * on a generated corpus, beside the model's raw offline throughput measured in
 * the same process on the same audio (already decoded, every window queued at
 * once), with 1 and 2 encoder workers. Efficiency = pipeline / raw.
 * Two copies of the corpus are run: mixed formats (22.05 kHz WAV, MP3, FLAC,
 * 24 kHz WAV), where decoding and resampling cost CPU, and the same audio as
 * 24 kHz WAV, where they cost almost nothing: the second isolates the
 * pipeline's own overhead from the price of decoding.
 * Raw and pipeline runs are interleaved --repeat times; efficiency is the
 * median over repeats of the ratio within one repeat, so load from others
 * that comes and goes on a shared machine moves both sides of a ratio alike.
 *   npm run bench:prep [-- --files 300 --workers 1,2 --threads N --repeat 3 --provider cpu]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeWhole } from '../prep/item.js';
import { runLocal, startPool } from '../prep/local.js';
import { parseOptions } from '../cli/usage.js';
import { execOptions, num, planOptions } from '../prep/options.js';
import { modelSettings } from '../prep/plan.js';
import { childCpuSeconds, decodeAll, makeCorpus } from './prep-corpus.js';

const value = { type: 'string' } as const;
const { values: argv } = parseOptions(process.argv.slice(2), { files: value, workers: value, threads: value, repeat: value, provider: value, 'models-dir': value, model: value, keep: { type: 'boolean' } });
const nFiles = Number(argv.files ?? 300);
const workerCounts = (argv.workers ?? '1,2').split(',').map(Number);
// default: cores / workers, as `prep run` does; fewer leaves cores to decoding
const threadsArg = argv.threads;
const repeats = num(argv, 'repeat', 3, { min: 1, int: true });
const provider = argv.provider ?? 'cpu';
const modelsDir = resolve(argv['models-dir'] ?? 'models');
const modelName = argv.model ?? 'default';
const cores = availableParallelism();

/** CPU seconds of this process (all threads) plus its finished children (ffmpeg). */
function cpuSeconds(): number {
  const own = process.cpuUsage();
  return (own.user + own.system) / 1e6 + childCpuSeconds();
}

const work = mkdtempSync(join(tmpdir(), 'tokstream-bench-prep-'));
const corpus = join(work, 'corpus');
const t0 = performance.now();
await makeCorpus(corpus, nFiles);
console.log(`corpus: ${nFiles} files generated in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${cores} cores, load average ${loadavg()[0].toFixed(1)}`);

const plan = planOptions({ input: corpus, out: join(work, 'out-0'), 'models-dir': modelsDir, model: modelName });

// decode everything once, in memory, for the raw model figure
const { listInput } = await import('../prep/inputs.js');
const { readManifest } = await import('../codec/manifest.js');
const manifest = await readManifest(plan.modelDir);
const listing = await listInput(corpus);
const signals = await decodeAll(listing.items.map((i) => i.path), manifest.sampleRate);
const audioSec = signals.reduce((s, x) => s + x.length, 0) / manifest.sampleRate;
const { encodeWav } = await import('../codec/wav.js');
const { writeFileSync } = await import('node:fs');
const modelRateCorpus = join(work, 'corpus-24k');
listing.items.forEach((item, i) => {
  const path = join(modelRateCorpus, item.key + '.wav');
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, encodeWav(signals[i], manifest.sampleRate, '32f'));
});
console.log(`audio: ${(audioSec / 3600).toFixed(3)} h in ${signals.length} files (mean ${(audioSec / signals.length).toFixed(2)} s)\n`);

const HEAD = ['corpus ', 'workers', 'threads', 'raw x RT', 'raw batch', 'pipeline x RT', 'efficiency', 'pipe batch', 'encoder busy', 'CPU ratio raw/pipe'];
const rows: string[] = [];

interface Run {
  sec: number;
  cpu: number;
  /** windows per ONNX run */
  batch: number;
  /** share of the wall time the encoder sessions had work */
  busy: number;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
const exec = (workers: number) =>
  execOptions({ workers: String(workers), threads: threadsArg, provider, quiet: true });
const settings = { model: modelSettings(manifest), codebooks: manifest.numCodebooks, vad: null, shardBytes: plan.shardBytes, chunkFrames: plan.chunkFrames, maxItemSec: plan.maxItemSec };

/** The model alone: the same pool, fed every window of every (pre-decoded) file at once. */
async function rawRun(workers: number): Promise<Run> {
  const pool = await startPool(plan.modelDir, exec(workers));
  try {
    const ctx = { settings, pool, windowsAhead: 1 << 20 };
    await encodeWhole(signals[0], ctx); // warm-up
    const [w0, b0, r0] = [pool.windows, pool.busyMs, pool.runs];
    const t = performance.now();
    const c = cpuSeconds();
    await Promise.all(signals.map((s) => encodeWhole(s, ctx)));
    const sec = (performance.now() - t) / 1000;
    return { sec, cpu: cpuSeconds() - c, batch: (pool.windows - w0) / (pool.runs - r0), busy: (pool.busyMs - b0) / 1000 / workers / sec };
  } finally {
    await pool.close();
  }
}

/** The real command, decoding from files (listing, planning, session start-up, decoding, writing, merge). */
async function pipelineRun(workers: number, input: string, out: string): Promise<Run> {
  const t = performance.now();
  const c = cpuSeconds();
  let pool: { busyMs: number; windows: number; runs: number } | undefined;
  const report = await runLocal({ ...plan, input, out }, exec(workers), () => {}, (p) => (pool = p));
  const sec = (performance.now() - t) / 1000;
  const cpu = cpuSeconds() - c;
  const failed = (report.stats as { inputs: { failed: number } }).inputs.failed;
  if (failed) console.log(`WARNING: ${failed} inputs failed`);
  rmSync(out, { recursive: true, force: true });
  return { sec, cpu, batch: pool!.windows / pool!.runs, busy: pool!.busyMs / 1000 / workers / sec };
}

const corpora = [['mixed', corpus], ['24k-wav', modelRateCorpus]] as const;
for (const workers of workerCounts) {
  const runs: Record<string, Run[]> = { raw: [], mixed: [], '24k-wav': [] };
  // interleaved, so outside load that comes and goes hits one repeat of each rather than all repeats of one
  for (let rep = 0; rep < repeats; rep++) {
    runs.raw.push(await rawRun(workers));
    for (const [name, input] of corpora) runs[name].push(await pipelineRun(workers, input, join(work, `out-${name}-${workers}-${rep}`)));
  }
  const walls = (k: string) => runs[k].map((r) => `${r.sec.toFixed(2)} s / ${r.cpu.toFixed(1)} s CPU`).join(', ');
  console.log(`workers=${workers}, wall / CPU of each repeat: raw ${walls('raw')}`);
  for (const [name] of corpora) console.log(`  ${name}: ${walls(name)}`);
  const raw = runs.raw;
  for (const [name] of corpora) {
    const p = runs[name];
    // ratios within a repeat (measured seconds apart), then the median over repeats
    const eff = median(p.map((r, i) => raw[i].sec / r.sec));
    const cpuRatio = median(p.map((r, i) => raw[i].cpu / r.cpu));
    const m = (rs: Run[], f: (r: Run) => number) => median(rs.map(f)).toFixed(1);
    rows.push(
      [name, workers, exec(workers).threads, m(raw, (r) => audioSec / r.sec), m(raw, (r) => r.batch), m(p, (r) => audioSec / r.sec), eff.toFixed(2), m(p, (r) => r.batch), median(p.map((r) => r.busy)).toFixed(2), cpuRatio.toFixed(2)]
        .map((v, i) => String(v).padStart(HEAD[i].length))
        .join(' | '),
    );
  }
}

console.log(`\nprep throughput, model ${manifest.name} ${manifest.version}, provider ${provider}, ${cores} cores, medians of ${repeats} repeats; x real time = audio-hours per hour; load average now ${loadavg()[0].toFixed(1)}`);
console.log(HEAD.join(' | '));
for (const r of rows) console.log(r);
if (!argv.keep) rmSync(work, { recursive: true, force: true });
else console.log(`kept ${work}`);
