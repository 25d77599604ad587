/**
 * Corpus preprocessing throughput: audio-hours per hour of `tokstream prep run`
 * on a generated corpus, beside the model's raw offline throughput measured in
 * the same process on the same audio (already decoded, every window queued at
 * once), with 1 and 2 encoder workers. Efficiency = pipeline / raw.
 * Two copies of the corpus are run: mixed formats (22.05 kHz WAV, MP3, FLAC,
 * 24 kHz WAV), where decoding and resampling cost CPU, and the same audio as
 * 24 kHz WAV, where they cost almost nothing: the second isolates the
 * pipeline's own overhead from the price of decoding.
 *   npm run bench:prep [-- --files 150 --workers 1,2 --provider cpu]
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { encodeWhole, openPcm } from '../prep/item.js';
import { runLocal, startPool } from '../prep/local.js';
import { execOptions, parseArgs, planOptions } from '../prep/options.js';

const run = promisify(execFile);
const argv = parseArgs(process.argv.slice(2), { files: 'value', workers: 'value', provider: 'value', 'models-dir': 'value', model: 'value', keep: 'flag' });
const nFiles = Number(argv.get('files') ?? 150);
const workerCounts = String(argv.get('workers') ?? '1,2').split(',').map(Number);
const provider = String(argv.get('provider') ?? 'cpu');
const modelsDir = resolve(String(argv.get('models-dir') ?? 'models'));
const modelName = String(argv.get('model') ?? 'default');
const cores = availableParallelism();

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog',
  'A journey of a thousand miles begins with a single step',
  'She sells sea shells by the sea shore while the sun goes down',
  'Tokens are small integers that stand for short pieces of sound',
  'Every corpus needs careful preparation before training starts',
];

/** Short spoken files: espeak-ng WAV (22.05 kHz), every third converted to MP3 / FLAC / 24 kHz WAV. */
async function makeCorpus(dir: string): Promise<void> {
  const formats = ['wav', 'mp3', 'wav', 'flac', 'wav', 'wav24'];
  const one = async (i: number) => {
    const sub = join(dir, `spk${i % 10}`);
    mkdirSync(sub, { recursive: true });
    const raw = join(sub, `utt${String(i).padStart(4, '0')}.wav`);
    await run('espeak-ng', ['-s', String(140 + (i % 7) * 15), '-w', raw, `${SENTENCES[i % SENTENCES.length]}, item ${i}.`]);
    const fmt = formats[i % formats.length];
    if (fmt === 'wav') return;
    const args = { mp3: ['-c:a', 'libmp3lame', '-b:a', '64k'], flac: ['-c:a', 'flac'], wav24: ['-ar', '24000'] }[fmt]!;
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', raw, ...args, raw.replace(/\.wav$/, fmt === 'wav24' ? '.24k.wav' : `.${fmt}`)]);
    rmSync(raw);
  };
  for (let i = 0; i < nFiles; i += cores * 2) await Promise.all(Array.from({ length: Math.min(cores * 2, nFiles - i) }, (_, k) => one(i + k)));
}

/** CPU seconds of this process (all threads) plus its finished children (ffmpeg), from /proc where present. */
function cpuSeconds(): number {
  const own = process.cpuUsage();
  let children = 0;
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    children = (Number(fields[13]) + Number(fields[14])) / 100; // cutime + cstime, in clock ticks (USER_HZ = 100)
  } catch {
    // not Linux: children are left out
  }
  return (own.user + own.system) / 1e6 + children;
}

const work = mkdtempSync(join(tmpdir(), 'tokstream-bench-prep-'));
const corpus = join(work, 'corpus');
let t0 = performance.now();
await makeCorpus(corpus);
console.log(`corpus: ${nFiles} files generated in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${cores} cores, load average ${loadavg()[0].toFixed(1)}`);

const common = ['--input', corpus, '--models-dir', modelsDir, '--model', modelName, '--provider', provider, '--quiet'];
const plan = planOptions(parseArgs([...common.filter((a) => a !== '--provider' && a !== provider && a !== '--quiet'), '--out', join(work, 'out-0')], {
  input: 'value', out: 'value', 'models-dir': 'value', model: 'value',
}));

// decode everything once, in memory, for the raw model figure
const { listInput } = await import('../prep/inputs.js');
const { readManifest } = await import('../codec/manifest.js');
const manifest = await readManifest(plan.modelDir);
const listing = await listInput(corpus);
const signals: Float32Array[] = [];
for (const item of listing.items) {
  const parts: Float32Array[] = [];
  for await (const p of await openPcm(item.path, manifest.sampleRate, 60_000)) parts.push(p);
  const pcm = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  parts.reduce((o, p) => (pcm.set(p, o), o + p.length), 0);
  signals.push(pcm);
}
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
for (const workers of workerCounts) {
  const exec = execOptions(parseArgs(['--workers', String(workers), '--provider', provider, '--quiet'], { workers: 'value', provider: 'value', quiet: 'flag' }));
  const settings = { model: { ...(await import('../prep/plan.js')).modelSettings(manifest) }, codebooks: manifest.numCodebooks, vad: null, shardBytes: plan.shardBytes, chunkFrames: plan.chunkFrames, maxItemSec: plan.maxItemSec };
  // raw: the same pool, fed every window of every (pre-decoded) file at once
  const pool = await startPool(plan.modelDir, exec);
  const ctx = { settings, pool, ffmpegTimeoutMs: 60_000, windowsAhead: 1 << 20 };
  await encodeWhole(signals[0], ctx); // warm-up
  t0 = performance.now();
  let c0 = cpuSeconds();
  await Promise.all(signals.map((s) => encodeWhole(s, ctx)));
  const rawSec = (performance.now() - t0) / 1000;
  const rawCpu = cpuSeconds() - c0;
  const rawBatch = pool.windows / pool.runs;
  await pool.close();

  const raw = audioSec / rawSec;
  console.log(`workers=${workers}: raw ${rawSec.toFixed(2)} s wall / ${rawCpu.toFixed(1)} s CPU`);

  // pipeline: the real command, decoding from files
  for (const [name, input] of [['mixed', corpus], ['24k-wav', modelRateCorpus]]) {
    const out = join(work, `out-${name}-${workers}`);
    const x = execOptions(parseArgs(['--workers', String(workers), '--provider', provider, '--quiet'], { workers: 'value', provider: 'value', quiet: 'flag' }));
    t0 = performance.now();
    c0 = cpuSeconds();
    let pipePool: { busyMs: number; windows: number; runs: number } | undefined;
    const report = await runLocal({ ...plan, input, out }, x, () => {}, (p) => (pipePool = p));
    const pipeSec = (performance.now() - t0) / 1000;
    const pipeCpu = cpuSeconds() - c0;
    const failed = (report.stats as { inputs: { failed: number } }).inputs.failed;
    if (failed) console.log(`WARNING: ${failed} inputs failed`);
    const pipe = audioSec / pipeSec;
    const busy = pipePool ? pipePool.busyMs / 1000 / workers / pipeSec : NaN;
    rows.push(
      [name, workers, exec.threads, raw.toFixed(1), rawBatch.toFixed(1), pipe.toFixed(1), (pipe / raw).toFixed(2), (pipePool!.windows / pipePool!.runs).toFixed(1), busy.toFixed(2), (rawCpu / pipeCpu).toFixed(2)]
        .map((v, i) => String(v).padStart(HEAD[i].length))
        .join(' | '),
    );
    console.log(`  ${name}: pipeline ${pipeSec.toFixed(2)} s wall / ${pipeCpu.toFixed(1)} s CPU (includes listing, planning, session start-up, decoding, writing, merge)`);
  }
}

console.log(`\nprep throughput, model ${manifest.name} ${manifest.version}, provider ${provider}, ${cores} cores; x real time = audio-hours per hour`);
console.log(HEAD.join(' | '));
for (const r of rows) console.log(r);
if (!argv.has('keep')) rmSync(work, { recursive: true, force: true });
else console.log(`kept ${work}`);
