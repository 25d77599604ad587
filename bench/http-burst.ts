/**
 * Responsiveness under an HTTP burst, measured side by side in one run on one server:
 * /healthz and /metrics latency (probed every 100 ms / 250 ms) and a paced real-time WebSocket
 * stream's packet latency, first with no HTTP load, then while `--clients` clients each loop
 * POSTing a `--seconds` s file to /v1/encode (a refused client retries after 500 ms, ignoring
 * Retry-After, as a hostile or careless client would). Also: how long a refused client waits
 * for its 503, and the bulk throughput meanwhile.
 *
 * The burst's clients run in a child process, so the server's event loop is the only one measured
 * here; its delay (monitorEventLoopDelay) is printed as well.
 *
 *   npm run bench:http-burst [-- --clients 40 --seconds 30 --stream-seconds 15 --threads 2 --runs 1]
 *
 * (--threads: onnxruntime intra-op threads per session; --runs: the model's ONNX runs in flight,
 * each on a session thread of its own: the server's --max-concurrent-runs)
 */
import { execFileSync, spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { resolveServerConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { numberArg as arg } from './args.js';
import { percentile, realtimeStreamLatencies } from './stream-latency.js';


const CLIENTS = arg('clients', 40);
const SECONDS = arg('seconds', 30);
const STREAM_SECONDS = arg('stream-seconds', 15);
const THREADS = arg('threads', 2);
const RUNS = arg('runs', 1);
const loadAt = process.argv.indexOf('--load');
if (loadAt > 0) {
  // the child process: the burst's clients only
  await burstClients(process.argv[loadAt + 1], process.argv.slice(-2));
  process.exit(0);
}
const repo = resolve(new URL('..', import.meta.url).pathname, '..');
const work = mkdtempSync(join(tmpdir(), 'tokstream-bench-burst-'));

// inputs: SECONDS s of looped speech as 44.1 kHz stereo WAV (read and resampled in-process) and as MP3 (ffmpeg)
const speech = join(work, 'speech.wav');
execFileSync('espeak-ng', ['-w', speech, 'Health checks and live streams must stay fast while bulk uploads pile up at the door.']);
const inputPaths = (['wav', 'mp3'] as const).map((ext) => {
  const path = join(work, `input.${ext}`);
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-stream_loop', '-1', '-i', speech, '-t', String(SECONDS), '-ar', '44100', '-ac', '2', ...(ext === 'mp3' ? ['-c:a', 'libmp3lame', '-b:a', '128k'] : []), path]);
  return path;
});
const streamPcm = (() => {
  const buf = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-stream_loop', '-1', '-i', speech, '-t', String(STREAM_SECONDS), '-ar', '24000', '-ac', '1', '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
})();

const modelsDir = join(work, 'models');
execFileSync('mkdir', ['-p', modelsDir]);
symlinkSync(join(repo, 'models/default'), join(modelsDir, 'default'));
const config = resolveServerConfig({
  host: '127.0.0.1', port: 0, noAuth: true, logLevel: 'silent', modelsDir, intraOpThreads: THREADS, maxConcurrentRuns: RUNS, demo: false,
  maxConcurrentJobs: process.env.TOKSTREAM_HTTP_MAX_JOBS ? Number(process.env.TOKSTREAM_HTTP_MAX_JOBS) : undefined,
});
const server = await startServer(config);
const model = server.app.tokstream.registry.models.get('default')!;
const wsUrl = server.url.replace('http', 'ws') + '/v1/stream';
const jobs = config.maxConcurrentJobs;
console.log(`\n${CLIENTS} clients x ${SECONDS} s uploads (WAV 44.1 kHz stereo / MP3), ${jobs} job slots, ${THREADS} intra-op threads x ${RUNS} concurrent runs, model ${model.name} on ${model.provider.toUpperCase()}\n`);

/** GETs `path` every `everyMs` until `stop()`; the latencies in ms. */
function probe(path: string, everyMs: number): { stop: () => Promise<number[]> } {
  const out: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      const res = await fetch(`${server.url}${path}`);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
      out.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (performance.now() - t))));
    }
  })();
  return { stop: async () => ((running = false), await loop, out) };
}

interface Burst { refusedMs: number[]; encodedSec: number; wallSec: number }

/** CLIENTS loops of uploads (in this process: the child's side) until SIGTERM; the figures go to stdout as JSON. */
async function burstClients(url: string, files: string[]): Promise<void> {
  const bodies = files.map((f) => readFileSync(f));
  const refusedMs: number[] = [];
  let encodedSec = 0;
  let running = true;
  const abort = new AbortController();
  const t0 = performance.now();
  process.once('SIGTERM', () => {
    running = false;
    abort.abort();
  });
  await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    while (running) {
      const t = performance.now();
      try {
        const res = await fetch(`${url}/v1/encode`, { method: 'POST', body: bodies[i % bodies.length], signal: abort.signal });
        if (res.status === 503) {
          refusedMs.push(performance.now() - t);
          await res.arrayBuffer();
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`encode: HTTP ${res.status}`);
        encodedSec += SECONDS;
      } catch (e) {
        if (!abort.signal.aborted) throw e;
      }
    }
  }));
  process.stdout.write(JSON.stringify({ refusedMs, encodedSec, wallSec: (performance.now() - t0) / 1000 } satisfies Burst));
}

function burst(): { stop: () => Promise<Burst> } {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--load', server.url, '--clients', String(CLIENTS), '--seconds', String(SECONDS), ...inputPaths], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const done = new Promise<Burst>((ok, fail) => child.on('close', (code) => (code === 0 ? ok(JSON.parse(out) as Burst) : fail(new Error(`load process exited ${code}`)))));
  return { stop: () => (child.kill('SIGTERM'), done) };
}

interface Figures { healthz: number[]; metrics: number[]; stream: number[]; loopDelay: number[] }

async function measure(withBurst: boolean): Promise<Figures & { burst?: Burst }> {
  const load = withBurst ? burst() : undefined;
  if (load) await new Promise((r) => setTimeout(r, 2000)); // let the jobs start and the refusals begin
  const healthz = probe('/healthz', 100);
  const metrics = probe('/metrics', 250);
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const stream = await realtimeStreamLatencies(wsUrl, streamPcm, model.manifest.hopLength);
  delay.disable();
  // the histogram's p99 and max stand in for the samples (ns -> ms)
  const loopDelay = [delay.percentile(50), delay.percentile(99), delay.max].map((ns) => ns / 1e6);
  const figures = { healthz: await healthz.stop(), metrics: await metrics.stop(), stream, loopDelay };
  return { ...figures, burst: await load?.stop() };
}

const ms = (x: number) => `${x.toFixed(0).padStart(6)} ms`;
function row(label: string, quiet: number[], loaded: number[]): void {
  const q = percentile(quiet, 0.99);
  const l = percentile(loaded, 0.99);
  console.log(`${label.padEnd(26)} p99 ${ms(q)} ${ms(l)}   x${(l / q).toFixed(1).padStart(5)}   (p50 ${percentile(quiet, 0.5).toFixed(0)} / ${percentile(loaded, 0.5).toFixed(0)} ms, max ${Math.max(...loaded).toFixed(0)} ms, n ${quiet.length} / ${loaded.length})`);
}

// warm-up: the first ONNX runs allocate
await (await fetch(`${server.url}/v1/encode`, { method: 'POST', body: readFileSync(inputPaths[0]) })).arrayBuffer();
const quiet = await measure(false);
const loaded = await measure(true);
console.log(`${''.padEnd(26)}     ${'no load'.padStart(9)} ${'burst'.padStart(9)}`);
row('/healthz', quiet.healthz, loaded.healthz);
row('/metrics', quiet.metrics, loaded.metrics);
row('stream packet latency', quiet.stream, loaded.stream);
console.log(`${'event loop delay'.padEnd(26)} p99 ${ms(quiet.loopDelay[1])} ${ms(loaded.loopDelay[1])}   x${(loaded.loopDelay[1] / quiet.loopDelay[1]).toFixed(1).padStart(5)}   (max ${quiet.loopDelay[2].toFixed(0)} / ${loaded.loopDelay[2].toFixed(0)} ms)`);
const b = loaded.burst!;
console.log(
  `refused uploads: ${b.refusedMs.length}, time to 503 p50 ${percentile(b.refusedMs, 0.5).toFixed(0)} ms, p99 ${percentile(b.refusedMs, 0.99).toFixed(0)} ms; ` +
    `bulk encoded meanwhile: ${b.encodedSec} s of audio in ${b.wallSec.toFixed(1)} s (${(b.encodedSec / b.wallSec).toFixed(1)} audio-h/h)`,
);

await server.close();
rmSync(work, { recursive: true, force: true });
