/**
 * npm run bench:stream — how many real-time streams one server keeps, against the model's offline
 * throughput, measured side by side in one run on loopback.
 *
 *   1. offline batched throughput (x real time): long windows (the model's best case) and runs of the
 *      streaming shape (one chunk per stream with the stateful encoder, or a chunk plus its recomputed
 *      left context for models without one);
 *   2. the largest N of concurrent real-time encode clients for which every stream keeps real time
 *      (no error, every frame delivered) with p99 packet latency <= chunk + 100 ms
 *      (latency of a packet: from the moment its first audio sample was sent to its arrival);
 *   3. N / offline xRT (streaming efficiency), memory per stream (server RSS), and the batching gain:
 *      the same search against a server whose batcher runs one window per ONNX run.
 *
 * The server runs in a child process (its RSS is its own); clients run here. Options:
 *   --chunk-ms 80 --trial-sec 6 --max-n 256 --threads 0 --provider cpu --codebooks 8 --model-dir models/default --batch-wait-ms 4
 * The offline throughput is measured before and after the stream trials; on a shared machine the
 * spread between the two says how much the load moved during the run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { CodecModel } from '../codec/model.js';
import { StreamEncoder, concatTokens } from '../codec/stream-encoder.js';
import { encodeAudioIn } from '../clients/ts/protocol.js';
import { resolveServerConfig } from '../server/config.js';
import { startServer } from '../server/main.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const num = (k: string, d: number) => (args.has(k) ? Number(args.get(k)) : d);
const CHUNK_MS = num('chunk-ms', 80);
const TRIAL_SEC = num('trial-sec', 6);
const MAX_N = num('max-n', 256);
const THREADS = num('threads', 0);
const CODEBOOKS = num('codebooks', 8);
const PROVIDER = (args.get('provider') ?? 'cpu') as 'cpu' | 'cuda' | 'auto';
const MODEL_DIR = resolve(args.get('model-dir') ?? 'models/default');
const BATCH_WAIT_MS = num('batch-wait-ms', 4);
const SEND_MS = 20;

if (args.has('serve')) void serve(JSON.parse(args.get('serve')!));
else void main();

/** Child mode: a server with the given batch size, answering RSS queries over IPC. */
async function serve(opts: { maxBatch: number; modelsDir: string }): Promise<void> {
  const config = resolveServerConfig({
    port: 0, noAuth: true, logLevel: 'warn', demo: false, modelsDir: opts.modelsDir, provider: PROVIDER, intraOpThreads: THREADS,
    maxStreams: 4096, maxBatch: opts.maxBatch, maxBatchWaitMs: BATCH_WAIT_MS, admissionMaxQueueMs: 1e9, idleTimeoutMs: 60_000,
  });
  const server = await startServer(config);
  const busySec = async () => {
    const h = await server.app.tokstream.metrics.stepSeconds.get();
    return h.values.filter((v) => v.metricName?.endsWith('_sum')).reduce((s, v) => s + v.value, 0);
  };
  process.on('message', (m: string) => {
    if (m === 'rss') process.send!({ rss: process.memoryUsage().rss });
    if (m === 'busy') void busySec().then((busy) => process.send!({ busy }));
    if (m === 'stop') void server.close().then(() => process.exit(0));
  });
  process.send!({ port: server.port, provider: server.app.tokstream.registry.models.get('default')?.provider });
}

interface Child {
  proc: ChildProcess;
  url: string;
  provider: string;
  rss(): Promise<number>;
  /** Seconds the model has spent in ONNX runs so far. */
  busy(): Promise<number>;
  stop(): Promise<void>;
}

function startChild(maxBatch: number, modelsDir: string): Promise<Child> {
  const proc = fork(fileURLToPath(import.meta.url), ['--serve', JSON.stringify({ maxBatch, modelsDir }), ...process.argv.slice(2)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`server child exited (${code})`)));
    proc.once('message', (m: { port: number; provider: string }) => {
      const ask = <T>(msg: string, key: string) =>
        new Promise<T>((res) => {
          proc.once('message', (r: Record<string, T>) => res(r[key]));
          proc.send(msg);
        });
      resolve({
        proc,
        url: `ws://127.0.0.1:${m.port}/v1/stream`,
        provider: m.provider,
        rss: () => ask<number>('rss', 'rss'),
        busy: () => ask<number>('busy', 'busy'),
        stop: () => new Promise<void>((res) => {
          proc.removeAllListeners('exit');
          proc.once('exit', () => res());
          proc.send('stop');
        }),
      });
    });
  });
}

function speech(): Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'tokstream-bench-'));
  const wav = join(dir, 'speech.wav');
  execFileSync('espeak-ng', ['-w', wav, 'Real time streams of speech are turned into codec tokens while the speaker is still talking. '.repeat(3)]);
  const buf = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', wav, '-ac', '1', '-ar', '24000', '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
  const one = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  // long enough for every client to start at its own offset in a trial
  const out = new Float32Array(Math.max(one.length, Math.ceil((TRIAL_SEC + 20) * 24000)));
  for (let o = 0; o < out.length; o += one.length) out.set(one.subarray(0, out.length - o), o);
  return out;
}

async function offlineThroughput(audio: Float32Array): Promise<{ longXrt: number; sameShapeXrt: number; chunkFrames: number; windowFrames: number }> {
  const model = await CodecModel.load(MODEL_DIR, { provider: PROVIDER, intraOpThreads: THREADS });
  const sec = audio.length / model.manifest.sampleRate;
  await model.encode(audio.subarray(0, 24000), 24000); // warm-up
  let t = performance.now();
  const reps = 3;
  for (let i = 0; i < reps; i++) await model.encode(audio, 24000, { batch: 4 });
  const longXrt = (reps * sec) / ((performance.now() - t) / 1000);
  const hop = model.manifest.hopLength;
  const chunkFrames = Math.max(1, Math.round((CHUNK_MS / 1000) * (model.manifest.sampleRate / hop)));
  const batch = 16;
  const stateful = new StreamEncoder(model.manifest, { chunkFrames, stateful: true }).stateful;
  let kept = 0;
  let windowFrames = chunkFrames;
  if (stateful) {
    // what the server runs: one chunk per stream per run, each stream with its own carried state
    const n = chunkFrames * hop;
    const steps = Math.floor(audio.length / (batch * n));
    let states: Float32Array[] = Array.from({ length: batch }, () => new Float32Array(model.manifest.encoder.streaming!.stateSize));
    const chunks = (step: number) => states.map((_, j) => audio.subarray((j * steps + step) * n, (j * steps + step + 1) * n));
    await model.encodeStepBatch(chunks(0), states);
    t = performance.now();
    for (let step = 0; step < steps; step++) {
      states = (await model.encodeStepBatch(chunks(step), states)).states;
      kept += batch * chunkFrames;
    }
  } else {
    const windows = new StreamEncoder(model.manifest, { chunkFrames }).push(audio).slice(2);
    await model.encodeWindows(windows.slice(0, batch));
    t = performance.now();
    for (let i = 0; i + batch <= windows.length; i += batch) {
      await model.encodeWindows(windows.slice(i, i + batch));
      kept += windows.slice(i, i + batch).reduce((s, w) => s + w.keepCount, 0);
    }
    windowFrames = windows[0].audio.length / hop;
  }
  const sameShapeXrt = (kept * hop) / model.manifest.sampleRate / ((performance.now() - t) / 1000);
  await model.release();
  return { longXrt, sameShapeXrt, chunkFrames, windowFrames };
}

/** Token agreement between what a stream runs and default offline encoding (protocol.md §8). */
async function agreement(): Promise<string[]> {
  const model = await CodecModel.load(MODEL_DIR, { provider: PROVIDER, intraOpThreads: THREADS });
  const sentences: [string, string][] = [
    ['en-us', 'The quick brown fox jumps over the lazy dog.'], ['en', 'Streaming tokens must match offline encoding.'],
    ['de', 'She sells sea shells by the sea shore, quietly.'], ['fr', 'Numbers: one two three four five six seven eight nine ten.'],
  ];
  const clips = sentences.map(([voice, text]) => {
    const wav = execFileSync('espeak-ng', ['-v', voice, '--stdout', text], { maxBuffer: 1 << 28 });
    const buf = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', '-', '-ac', '1', '-ar', String(model.manifest.sampleRate), '-f', 'f32le', '-'], { input: wav, maxBuffer: 1 << 28 });
    return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
  });
  const lines: string[] = [];
  for (const chunkMs of [40, 80, 200]) {
    const chunkFrames = Math.max(1, Math.round((chunkMs / 1000) * (model.manifest.sampleRate / model.manifest.hopLength)));
    let same = 0, total = 0, same0 = 0, total0 = 0;
    for (const pcm of clips) {
      const enc = new StreamEncoder(model.manifest, { chunkFrames, eagerStart: true, stateful: true });
      const a = concatTokens(await model.encodeWindows([...enc.push(pcm), ...enc.finish()]));
      const b = await model.encode(pcm, model.manifest.sampleRate);
      a.codes.forEach((c, i) => ((total++, c === b.codes[i] && same++), i < a.numFrames && (total0++, c === b.codes[i] && same0++)));
    }
    lines.push(`chunk ${chunkMs} ms: ${((100 * same) / total).toFixed(2)}% of ${total} codes, codebook 0 ${((100 * same0) / total0).toFixed(2)}%`);
  }
  await model.release();
  return lines;
}

interface TrialResult {
  n: number;
  ok: boolean;
  p50: number;
  p99: number;
  errors: string[];
  missingFrames: number;
  rssMid: number;
  /** Share of the trial's wall time the model spent running. */
  busy: number;
}

/** N clients streaming in real time for TRIAL_SEC; every packet's latency from its first sample's send time. */
async function trial(child: Child, n: number, audio: Float32Array, hop: number): Promise<TrialResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let missingFrames = 0;
  const perSend = (24000 * SEND_MS) / 1000;
  const total = Math.floor(TRIAL_SEC * 24000 / perSend) * perSend;
  const clients = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const ws = new WebSocket(child.url);
    ws.binaryType = 'nodebuffer';
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    ws.send(JSON.stringify({ type: 'start', direction: 'encode', sampleRate: 24000, format: 's16le', chunkMs: CHUNK_MS, codebooks: CODEBOOKS }));
    const c = { ws, sent: 0, sendTimes: [] as number[], frames: 0, offset: (i * 7919 * perSend) % (audio.length - total), done: undefined as unknown as Promise<void> };
    c.done = new Promise<void>((res) => {
      ws.on('message', (data: Buffer, isBinary) => {
        if (!isBinary) {
          const m = JSON.parse(data.toString());
          if (m.type === 'error') errors.push(m.code);
          if (m.type === 'closed') res();
          return;
        }
        const first = data.readUInt32LE(8);
        const count = data.readUInt32LE(12);
        const sentAt = c.sendTimes[Math.floor((first * hop) / perSend)];
        if (sentAt !== undefined) latencies.push(performance.now() - sentAt);
        c.frames = first + count;
      });
      ws.on('close', () => res());
    });
    await new Promise<void>((r) => ws.once('message', () => r())); // ready
    return c;
  }));
  // one ticker paces everyone; each stream starts at a random phase within a chunk
  const busy0 = await child.busy();
  const t0 = performance.now();
  const phase = clients.map(() => Math.random() * CHUNK_MS);
  let rssMid = 0;
  await new Promise<void>((res) => {
    const tick = setInterval(() => {
      const now = performance.now();
      let running = false;
      clients.forEach((c, i) => {
        const due = Math.min(total, Math.floor((now - t0 - phase[i]) / SEND_MS + 1) * perSend);
        while (c.sent < due && c.ws.readyState === WebSocket.OPEN) {
          c.sendTimes.push(performance.now());
          c.ws.send(encodeAudioIn(audio.subarray(c.offset + c.sent, c.offset + c.sent + perSend), 's16le'));
          c.sent += perSend;
        }
        if (c.sent < total && c.ws.readyState === WebSocket.OPEN) running = true;
      });
      if (!running) {
        clearInterval(tick);
        res();
      }
    }, 5);
    setTimeout(() => void child.rss().then((r) => (rssMid = r)), (TRIAL_SEC * 1000) / 2);
  });
  const busy = (await child.busy() - busy0) / ((performance.now() - t0) / 1000);
  for (const c of clients) if (c.ws.readyState === WebSocket.OPEN) c.ws.send(JSON.stringify({ type: 'close' }));
  await Promise.race([Promise.all(clients.map((c) => c.done)), new Promise((r) => setTimeout(r, 10_000))]);
  for (const c of clients) {
    missingFrames += Math.max(0, Math.ceil(total / hop) - c.frames);
    c.ws.terminate();
  }
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Infinity;
  const p99 = q(0.99);
  return { n, ok: errors.length === 0 && missingFrames === 0 && p99 <= CHUNK_MS + 100, p50: q(0.5), p99, errors, missingFrames, rssMid, busy };
}

/** Doubling then bisection for the largest N that passes; a bounded number of trials. */
async function largestN(child: Child, audio: Float32Array, hop: number, label: string): Promise<{ best: TrialResult | undefined; trials: TrialResult[] }> {
  const trials: TrialResult[] = [];
  const run = async (n: number) => {
    const r = await trial(child, n, audio, hop);
    trials.push(r);
    console.log(`  [${label}] N=${String(n).padStart(3)}  ${r.ok ? 'keeps real time' : 'FAILS          '}  p50 ${r.p50.toFixed(0)} ms  p99 ${r.p99.toFixed(0)} ms  model busy ${(100 * r.busy).toFixed(0)}%${r.errors.length ? `  errors: ${[...new Set(r.errors)].join(',')}` : ''}${r.missingFrames ? `  missing frames: ${r.missingFrames}` : ''}`);
    await new Promise((r2) => setTimeout(r2, 500)); // let the server drain
    return r;
  };
  let lo: TrialResult | undefined;
  let hiN = 0;
  for (let n = 1; n <= MAX_N; n *= 2) {
    const r = await run(n);
    if (!r.ok) {
      hiN = n;
      break;
    }
    lo = r;
  }
  if (!lo || hiN === 0) return { best: lo, trials };
  let loN = lo.n;
  while (hiN - loN > Math.max(1, Math.floor(loN / 8))) {
    const mid = Math.floor((loN + hiN) / 2);
    const r = await run(mid);
    if (r.ok) {
      lo = r;
      loN = mid;
    } else hiN = mid;
  }
  return { best: lo, trials };
}

async function main(): Promise<void> {
  const started = performance.now();
  const audio = speech();
  const modelsDir = mkdtempSync(join(tmpdir(), 'tokstream-bench-models-'));
  symlinkSync(MODEL_DIR, join(modelsDir, 'default'));
  console.log(`tokstream stream benchmark: model ${MODEL_DIR}, chunk ${CHUNK_MS} ms, ${CODEBOOKS} codebooks, ${TRIAL_SEC} s trials, threads ${THREADS || 'all'}, provider ${PROVIDER}`);

  for (const line of await agreement()) console.log(`token agreement, streamed vs default offline encode: ${line}`);
  const before = await offlineThroughput(audio);
  console.log(`offline batched throughput: ${before.longXrt.toFixed(1)}x real time (10 s windows), ${before.sameShapeXrt.toFixed(1)}x with streaming-shaped runs (${before.windowFrames} frames computed per ${before.chunkFrames} kept)`);

  const batched = await startChild(16, modelsDir);
  const hop = 320;
  const idleRss = await batched.rss();
  console.log(`server (dynamic batcher, max batch 16) on ${batched.provider}:`);
  const b = await largestN(batched, audio, hop, 'batcher');
  await batched.stop();

  const single = await startChild(1, modelsDir);
  console.log('server (batch size 1):');
  const s = await largestN(single, audio, hop, 'batch=1');
  await single.stop();

  const after = await offlineThroughput(audio);
  console.log(`offline batched throughput again: ${after.longXrt.toFixed(1)}x / ${after.sameShapeXrt.toFixed(1)}x real time`);
  const off = { longXrt: (before.longXrt + after.longXrt) / 2, sameShapeXrt: (before.sameShapeXrt + after.sameShapeXrt) / 2 };
  const spread = (a: number, b: number) => `${Math.min(a, b).toFixed(1)}-${Math.max(a, b).toFixed(1)}`;
  const n = b.best?.n ?? 0;
  const n1 = s.best?.n ?? 0;
  const memPerStream = b.best && b.best.rssMid > idleRss ? (b.best.rssMid - idleRss) / b.best.n : NaN;
  const rows: [string, string][] = [
    ['offline batched throughput (10 s windows)', `${off.longXrt.toFixed(1)}x real time (before/after: ${spread(before.longXrt, after.longXrt)})`],
    ['offline batched throughput (streaming-shaped runs)', `${off.sameShapeXrt.toFixed(1)}x real time (before/after: ${spread(before.sameShapeXrt, after.sameShapeXrt)})`],
    [`largest N keeping real time, p99 <= ${CHUNK_MS + 100} ms`, `${n} streams (p99 ${b.best?.p99.toFixed(0) ?? '-'} ms)`],
    ['streaming efficiency N / offline xRT (10 s windows)', `${(n / off.longXrt).toFixed(2)} (target >= 0.7)`],
    ['streaming efficiency N / offline xRT (streaming-shaped runs)', (n / off.sameShapeXrt).toFixed(2)],
    ['model busy share at that N (ONNX run time / wall time)', b.best ? `${(100 * b.best.busy).toFixed(0)}%` : 'n/a'],
    ['memory per stream (server RSS)', Number.isFinite(memPerStream) ? `${(memPerStream / 1024).toFixed(0)} KiB` : 'n/a'],
    ['batch-size-1 scheduler: largest N', `${n1} streams`],
    ['batching gain (N batcher / N batch=1)', n1 > 0 ? `${(n / n1).toFixed(2)}x` : 'n/a (batch=1 kept no stream)'],
    ['benchmark wall time', `${((performance.now() - started) / 1000).toFixed(0)} s`],
  ];
  console.log('\nresults');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(58)} ${v}`);
}
