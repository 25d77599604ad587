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
 *      the same search against a server whose batcher runs one window per ONNX run;
 *   4. the same search for decode streams (token packets of one chunk every chunk duration, PCM back;
 *      latency of PCM from the send of the packet that completed it), against offline decode.
 *
 * The server runs in a child process (its RSS is its own); clients run here. Options:
 *   --chunk-ms 80 --trial-sec 6 --max-n 256 --threads 0 --runs 1 --provider cpu --codebooks 8 --model-dir models/default --batch-wait-ms 4
 * (--runs: the server's --max-concurrent-runs, one session thread per run in flight)
 *   --agreement-only 1 (print the token agreement of §8 and stop)
 * The offline throughput is measured before and after the stream trials; on a shared machine the
 * spread between the two says how much the load moved during the run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { readManifest } from '../codec/manifest.js';
import { CodecModel } from '../codec/model.js';
import { StreamEncoder, concatTokens, sliceTokens } from '../codec/stream-encoder.js';
import type { TokenBlock } from '../codec/pure/types.js';
import { encodeAudioIn, encodeTokenPacket } from '../protocol/stream.js';
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
const RUNS = num('runs', 1);
const SEND_MS = 20;

if (args.has('serve')) void serve(JSON.parse(args.get('serve')!));
else void main();

/** Child mode: a server with the given batch size, answering RSS queries over IPC. */
async function serve(opts: { maxBatch: number; modelsDir: string }): Promise<void> {
  const config = resolveServerConfig({
    port: 0, noAuth: true, logLevel: 'warn', demo: false, modelsDir: opts.modelsDir, provider: PROVIDER, intraOpThreads: THREADS,
    maxStreams: 4096, maxBatch: opts.maxBatch, maxBatchWaitMs: BATCH_WAIT_MS, maxConcurrentRuns: RUNS, admissionMaxQueueMs: 1e9, idleTimeoutMs: 60_000,
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

interface Offline {
  longXrt: number;
  sameShapeXrt: number;
  /** offline decode, 10 s windows */
  decodeXrt: number;
  chunkFrames: number;
  windowFrames: number;
  /** the benchmark audio's tokens (what decode clients send) */
  tokens: TokenBlock;
}

async function offlineThroughput(audio: Float32Array): Promise<Offline> {
  const model = await CodecModel.load(MODEL_DIR, { provider: PROVIDER, intraOpThreads: THREADS });
  const sec = audio.length / model.manifest.sampleRate;
  await model.encode(audio.subarray(0, 24000), 24000); // warm-up
  let t = performance.now();
  const reps = 3;
  for (let i = 0; i < reps; i++) await model.encode(audio, 24000, { batch: 4 });
  const longXrt = (reps * sec) / ((performance.now() - t) / 1000);
  const tokens = await model.encode(audio, 24000, { batch: 4, codebooks: CODEBOOKS });
  t = performance.now();
  for (let i = 0; i < reps; i++) await model.decode(tokens, { batch: 4 });
  const decodeXrt = (reps * sec) / ((performance.now() - t) / 1000);
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
  return { longXrt, sameShapeXrt, decodeXrt, chunkFrames, windowFrames, tokens };
}

/** Mono f32 PCM at `rate` from any file or from bytes on stdin (ffmpeg). */
function pcmAt(rate: number, input: string | Buffer): Float32Array {
  const src = typeof input === 'string' ? input : '-';
  const buf = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', src, '-ac', '1', '-ar', String(rate), '-f', 'f32le', '-'], { input: typeof input === 'string' ? undefined : input, maxBuffer: 1 << 28 });
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
}

/**
 * Human recordings installed with Debian packages the model never trained on (models/eval/clips.py's
 * reserved set): alsa-utils' channel announcements and klettres-data's letters and syllables.
 */
function realRecordings(): string[] {
  const alsa = '/usr/share/sounds/alsa';
  const files = existsSync(alsa) ? readdirSync(alsa).filter((f) => f.endsWith('.wav') && f !== 'Noise.wav').map((f) => join(alsa, f)) : [];
  for (const lang of ['en', 'de', 'fr', 'it', 'nl', 'cs']) {
    const dir = `/usr/share/klettres/${lang}`;
    if (existsSync(dir)) files.push(...readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ogg')).sort().map((f) => join(dir, f)));
  }
  return files;
}

/** Token agreement between what a stream runs and default offline encoding (protocol.md §8). */
async function agreement(): Promise<string[]> {
  const model = await CodecModel.load(MODEL_DIR, { provider: PROVIDER, intraOpThreads: THREADS });
  const rate = model.manifest.sampleRate;
  const sentences: [string, string][] = [
    ['en-us', 'The quick brown fox jumps over the lazy dog.'], ['en', 'Streaming tokens must match offline encoding.'],
    ['de', 'She sells sea shells by the sea shore, quietly.'], ['fr', 'Numbers: one two three four five six seven eight nine ten.'],
  ];
  const corpora: [string, Float32Array[]][] = [
    ['4 espeak-ng sentences', sentences.map(([voice, text]) => pcmAt(rate, execFileSync('espeak-ng', ['-v', voice, '--stdout', text], { maxBuffer: 1 << 28 })))],
  ];
  const real = realRecordings();
  if (real.length) corpora.push([`${real.length} human recordings (alsa-utils, klettres-data)`, real.map((f) => pcmAt(rate, f))]);
  const lines: string[] = [];
  for (const [name, clips] of corpora) {
    for (const chunkMs of [40, 80, 200]) {
      const chunkFrames = Math.max(1, Math.round((chunkMs / 1000) * (rate / model.manifest.hopLength)));
      let same = 0, total = 0, same0 = 0, total0 = 0, filesDiffering = 0, framesDiffering = 0;
      for (const pcm of clips) {
        const enc = new StreamEncoder(model.manifest, { chunkFrames, eagerStart: true, stateful: true });
        const a = concatTokens(await model.encodeWindows([...enc.push(pcm), ...enc.finish()]));
        const b = await model.encode(pcm, rate);
        const differs = new Set<number>();
        a.codes.forEach((c, i) => {
          total++;
          if (c === b.codes[i]) same++;
          else differs.add(i % a.numFrames);
          if (i < a.numFrames) {
            total0++;
            if (c === b.codes[i]) same0++;
          }
        });
        if (differs.size) {
          filesDiffering++;
          framesDiffering += differs.size;
        }
      }
      lines.push(`${name}, chunk ${chunkMs} ms: ${((100 * same) / total).toFixed(3)}% of ${total} codes, codebook 0 ${((100 * same0) / total0).toFixed(3)}%; ${filesDiffering} of ${clips.length} files differ (${framesDiffering} frames)`);
    }
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
  /** units (encode: frames; decode: samples) never delivered */
  missing: number;
  rssMid: number;
  /** Share of the trial's wall time the model spent running. */
  busy: number;
}

/**
 * What a client of one direction sends and how its answers are scored. Units: samples (encode) or
 * frames (decode); `perSend` units leave every `everyMs`.
 */
interface Direction {
  name: 'encode' | 'decode';
  start: Record<string, unknown>;
  perSend: number;
  everyMs: number;
  /** units each client sends in a trial */
  total: number;
  /** the wire frame for units [from, from + perSend) of client i's input */
  frame(i: number, from: number): Uint8Array;
  /** for an answer frame: the index of the send whose input completed it, and the progress it shows */
  answer(data: Buffer): { sendIndex: number; progress: number };
  /** progress when every answer has arrived */
  expected: number;
}

function encodeDirection(audio: Float32Array, hop: number): Direction {
  const perSend = (24000 * SEND_MS) / 1000;
  const total = Math.floor((TRIAL_SEC * 24000) / perSend) * perSend;
  return {
    name: 'encode',
    start: { type: 'start', direction: 'encode', sampleRate: 24000, format: 's16le', chunkMs: CHUNK_MS, codebooks: CODEBOOKS },
    perSend,
    everyMs: SEND_MS,
    total,
    frame: (i, from) => {
      const offset = (i * 7919 * perSend) % (audio.length - total);
      return encodeAudioIn(audio.subarray(offset + from, offset + from + perSend), 's16le');
    },
    // a token packet's latency runs from the send of its first frame's first sample
    answer: (data) => ({ sendIndex: Math.floor((data.readUInt32LE(8) * hop) / perSend), progress: data.readUInt32LE(8) + data.readUInt32LE(12) }),
    expected: Math.ceil(total / hop),
  };
}

function decodeDirection(tokens: TokenBlock, hop: number, chunkFrames: number, lookahead: number): Direction {
  const total = Math.floor((TRIAL_SEC * 1000) / CHUNK_MS) * chunkFrames;
  return {
    name: 'decode',
    start: { type: 'start', direction: 'decode', sampleRate: 24000, format: 's16le', chunkMs: CHUNK_MS, codebooks: CODEBOOKS },
    perSend: chunkFrames,
    everyMs: CHUNK_MS,
    total,
    frame: (i, from) => {
      const offset = (i * 7919 * chunkFrames) % (tokens.numFrames - total);
      return encodeTokenPacket(sliceTokens(tokens, offset + from, chunkFrames, CODEBOOKS), from / chunkFrames, from, 2);
    },
    // audio up to sample b needs frame ceil(b / hop) - 1 and its lookahead: latency from that packet's send
    answer: (data) => {
      const end = data.readUInt32LE(8) + data.readUInt32LE(12);
      return { sendIndex: Math.floor((Math.ceil(end / hop) - 1 + lookahead) / chunkFrames), progress: end };
    },
    expected: total * hop,
  };
}

/** N clients streaming in real time for TRIAL_SEC; every answer's latency from the send that completed its input. */
async function trial(child: Child, n: number, dir: Direction): Promise<TrialResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let missing = 0;
  const clients = await Promise.all(Array.from({ length: n }, async () => {
    const ws = new WebSocket(child.url);
    ws.binaryType = 'nodebuffer';
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    ws.send(JSON.stringify(dir.start));
    const c = { ws, sent: 0, sendTimes: [] as number[], progress: 0, done: undefined as unknown as Promise<void> };
    c.done = new Promise<void>((res) => {
      ws.on('message', (data: Buffer, isBinary) => {
        if (!isBinary) {
          const m = JSON.parse(data.toString());
          if (m.type === 'error') errors.push(m.code);
          if (m.type === 'closed') res();
          return;
        }
        const { sendIndex, progress } = dir.answer(data);
        const sentAt = c.sendTimes[sendIndex];
        if (sentAt !== undefined) latencies.push(performance.now() - sentAt); // the stream's end waits for `close`: not timed
        c.progress = progress;
      });
      ws.on('close', () => res());
    });
    await new Promise<void>((r) => ws.once('message', () => r())); // ready
    return c;
  }));
  // one ticker paces everyone; each stream starts at a random phase within a send period
  const busy0 = await child.busy();
  const t0 = performance.now();
  const phase = clients.map(() => Math.random() * dir.everyMs);
  let rssMid = 0;
  await new Promise<void>((res) => {
    const tick = setInterval(() => {
      const now = performance.now();
      let running = false;
      clients.forEach((c, i) => {
        const due = Math.min(dir.total, Math.floor((now - t0 - phase[i]) / dir.everyMs + 1) * dir.perSend);
        while (c.sent < due && c.ws.readyState === WebSocket.OPEN) {
          c.sendTimes.push(performance.now());
          c.ws.send(dir.frame(i, c.sent));
          c.sent += dir.perSend;
        }
        if (c.sent < dir.total && c.ws.readyState === WebSocket.OPEN) running = true;
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
    missing += Math.max(0, dir.expected - c.progress);
    c.ws.terminate();
  }
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Infinity;
  const p99 = q(0.99);
  return { n, ok: errors.length === 0 && missing === 0 && p99 <= CHUNK_MS + 100, p50: q(0.5), p99, errors, missing, rssMid, busy };
}

/** Doubling then bisection for the largest N that passes; a bounded number of trials. */
async function largestN(child: Child, dir: Direction, label: string): Promise<{ best: TrialResult | undefined; trials: TrialResult[] }> {
  const trials: TrialResult[] = [];
  const run = async (n: number) => {
    const r = await trial(child, n, dir);
    trials.push(r);
    console.log(`  [${label}] N=${String(n).padStart(3)}  ${r.ok ? 'keeps real time' : 'FAILS          '}  p50 ${r.p50.toFixed(0)} ms  p99 ${r.p99.toFixed(0)} ms  model busy ${(100 * r.busy).toFixed(0)}%${r.errors.length ? `  errors: ${[...new Set(r.errors)].join(',')}` : ''}${r.missing ? `  missing: ${r.missing} ${dir.name === 'encode' ? 'frames' : 'samples'}` : ''}`);
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
  if (args.get('agreement-only')) return;
  const before = await offlineThroughput(audio);
  console.log(`offline batched throughput: ${before.longXrt.toFixed(1)}x real time (10 s windows), ${before.sameShapeXrt.toFixed(1)}x with streaming-shaped runs (${before.windowFrames} frames computed per ${before.chunkFrames} kept); decode ${before.decodeXrt.toFixed(1)}x (10 s windows)`);

  const { hopLength: hop, decoder } = await readManifest(MODEL_DIR);
  const encode = encodeDirection(audio, hop);
  const decode = decodeDirection(before.tokens, hop, before.chunkFrames, decoder.lookahead);
  const batched = await startChild(16, modelsDir);
  const idleRss = await batched.rss();
  console.log(`server (dynamic batcher, max batch 16) on ${batched.provider}, encode streams:`);
  const b = await largestN(batched, encode, 'batcher');
  console.log('same server, decode streams (tokens in, PCM out):');
  const d = await largestN(batched, decode, 'decode');
  await batched.stop();

  const single = await startChild(1, modelsDir);
  console.log('server (batch size 1), encode streams:');
  const s = await largestN(single, encode, 'batch=1');
  await single.stop();

  const after = await offlineThroughput(audio);
  console.log(`offline batched throughput again: ${after.longXrt.toFixed(1)}x / ${after.sameShapeXrt.toFixed(1)}x real time; decode ${after.decodeXrt.toFixed(1)}x`);
  const off = { longXrt: (before.longXrt + after.longXrt) / 2, sameShapeXrt: (before.sameShapeXrt + after.sameShapeXrt) / 2, decodeXrt: (before.decodeXrt + after.decodeXrt) / 2 };
  const nd = d.best?.n ?? 0;
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
    ['offline decode throughput (10 s windows)', `${off.decodeXrt.toFixed(1)}x real time (before/after: ${spread(before.decodeXrt, after.decodeXrt)})`],
    [`decode streams: largest N keeping real time, p99 <= ${CHUNK_MS + 100} ms`, `${nd} streams (p99 ${d.best?.p99.toFixed(0) ?? '-'} ms)`],
    ['decode streaming efficiency N / offline decode xRT', (nd / off.decodeXrt).toFixed(2)],
    ['benchmark wall time', `${((performance.now() - started) / 1000).toFixed(0)} s`],
  ];
  console.log('\nresults');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(58)} ${v}`);
}
