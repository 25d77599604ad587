/**
 * npm run bench:rooms — voice-chat rooms on loopback, measured in one run:
 *
 *   1. fan-out: one publisher speaking in real time, N listeners in the room (N = 1, 25, 100, ...);
 *      per N the packet latency (from the moment a packet's last audio sample was sent to its
 *      arrival at a listener: encode + relay + fan-out), p50/p99/max over all listeners and packets,
 *      packets dropped by the slow-listener policy, and bandwidth per listener. It prints the largest N
 *      whose p99 stays under one chunk.
 *   2. client-side decoding speed (x real time), as a listener decodes (6-frame packets, eager):
 *      onnxruntime-node beside onnxruntime-web, each with the windowed decoder.onnx and (when the
 *      model has one) the stateful decoder_stream.onnx that clients load by default. The "browser"
 *      decoder is onnxruntime-web's wasm backend running in Node: the same wasm binary browsers run
 *      (one thread, as the demo page uses), but a browser's wasm engine and load may give other speeds.
 *
 * The server runs here; the publisher and all listeners run in one child process (one clock for
 * send and arrival times). Options: --chunk-ms 80 --trial-sec 4 --max-n 1000 --codebooks 8
 * --decode-sec 5 --time-limit-sec 240 (the fan-out search stops when the next step would exceed it).
 *
 * --nodes 2: each step also runs on two servers sharing rooms through a redis-server started here
 * (docs/deploy.md, "Rooms across nodes"): the publisher on A, half the listeners on A and half on
 * B. Listeners on B get packets through Redis, those on A directly, in the same trial: the
 * difference of their p99 is what the Redis hop adds.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import WebSocket from 'ws';
import { CodecModel } from '../codec/model.js';
import { sliceTokens } from '../codec/stream-encoder.js';
import { LocalDecoder, TokenStreamDecoder, type DecoderGraph, type OrtLike } from '../clients/ts/decoder.js';
import { joinRoom, openRoomPublisher, type RoomSubscription } from '../clients/ts/room-client.js';
import { resolveServerConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { pct, speech } from './room-speech.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const num = (k: string, d: number) => (args.has(k) ? Number(args.get(k)) : d);
const CHUNK_MS = num('chunk-ms', 80);
const TRIAL_SEC = num('trial-sec', 4);
const MAX_N = num('max-n', 1000);
const CODEBOOKS = num('codebooks', 8);
const DECODE_SEC = num('decode-sec', 5);
const TIME_LIMIT_SEC = num('time-limit-sec', 240);
const NODES = num('nodes', 1);
if (NODES !== 1 && NODES !== 2) throw new Error('--nodes is 1 (default) or 2');
const MODEL_DIR = resolve(args.get('model-dir') ?? 'models/default');
const SEND_MS = 20;
const STEPS = [1, 25, 100, 250, 500, 1000, 2000].filter((n) => n <= MAX_N);

interface TrialResult {
  n: number;
  joined: number;
  packets: number;
  latenciesMs: number[];
  /** The same latencies by the node the listener joined (listener i joins node i mod nodes). */
  byNode: number[][];
  /** Per packet (2 nodes): median arrival on node B's listeners minus median arrival on node A's. */
  hopMs: number[];
  dropped: number;
  bytesPerListener: number;
  audioSec: number;
  errors: string[];
}

if (args.has('clients')) void clients(JSON.parse(args.get('clients')!));
else void main();

const epoch = () => performance.timeOrigin + performance.now();

/** Child mode: N listeners join (spread over `listen`), one publisher speaks in real time to `url`; reports latencies to the parent. */
async function clients(opts: { url: string; listen: string[]; n: number; rate: number }): Promise<void> {
  const { url, listen, n, rate } = opts;
  const errors: string[] = [];
  const subs: RoomSubscription[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => joinRoom({ url: `${listen[(i + j) % listen.length]}/v1/rooms/listen`, room: 'bench', WebSocket: WebSocket as never })));
    subs.push(...batch);
  }
  const arrivals: { frameEnd: number; at: number }[][] = subs.map(() => []);
  const loops = subs.map(async (s, i) => {
    try {
      for await (const ev of s) if (ev.type === 'tokens') arrivals[i].push({ frameEnd: ev.packet.firstFrame + ev.packet.tokens.numFrames, at: performance.timeOrigin + ev.receivedAt });
      else if (ev.type === 'publisher_left') break;
    } catch (e) {
      errors.push((e as Error).message);
    }
  });
  const pub = await openRoomPublisher({ url: `${url}/v1/rooms/publish`, room: 'bench', WebSocket: WebSocket as never, format: 'f32le', codebooks: CODEBOOKS, chunkMs: CHUNK_MS });
  const hop = pub.ready.hopLength;
  const echo = (async () => {
    for await (const _ of pub) void _;
  })();
  // real-time pacing: block k is written at start + k * SEND_MS; sentAt[s] = when model sample s was written
  const audio = speech(TRIAL_SEC, rate);
  const block = (rate * SEND_MS) / 1000;
  const sentAt = new Float64Array(Math.ceil(audio.length / block));
  const start = epoch();
  for (let k = 0; k * block < audio.length; k++) {
    const wait = start + k * SEND_MS - epoch();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pub.write(audio.subarray(k * block, (k + 1) * block));
    sentAt[k] = epoch();
  }
  await pub.close();
  await echo;
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 10_000))]);
  const latenciesMs: number[] = [];
  const byNode: number[][] = listen.map(() => []);
  let packets = 0;
  for (const [i, list] of arrivals.entries()) {
    for (const a of list) {
      const lastSample = Math.min(a.frameEnd * hop, audio.length) - 1;
      latenciesMs.push(a.at - sentAt[Math.floor(lastSample / block)]);
      byNode[i % listen.length].push(latenciesMs.at(-1)!);
    }
    packets = Math.max(packets, list.length);
  }
  const hopMs: number[] = [];
  if (listen.length === 2) {
    const arrivalsOf = (node: number) => {
      const byPacket = new Map<number, number[]>();
      for (const [i, list] of arrivals.entries()) if (i % 2 === node) for (const a of list) byPacket.set(a.frameEnd, [...(byPacket.get(a.frameEnd) ?? []), a.at]);
      return byPacket;
    };
    const [onA, onB] = [arrivalsOf(0), arrivalsOf(1)];
    for (const [frameEnd, atA] of onA) if (onB.has(frameEnd)) hopMs.push(pct(onB.get(frameEnd)!, 0.5) - pct(atA, 0.5));
  }
  const bytes = subs.reduce((s, x) => s + x.bytesReceived, 0);
  for (const s of subs) s.close();
  const result: TrialResult = {
    n, joined: subs.length, packets, latenciesMs, byNode, hopMs, dropped: packets * subs.length - latenciesMs.length, bytesPerListener: bytes / Math.max(1, subs.length),
    audioSec: audio.length / rate, errors,
  };
  process.send!(result, () => process.exit(0));
}

function runClients(url: string, n: number, rate: number, listen = [url]): Promise<TrialResult> {
  return new Promise((resolveTrial, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--clients', JSON.stringify({ url, listen, n, rate }), ...process.argv.slice(2)], { stdio: 'inherit' });
    child.once('message', (m) => resolveTrial(m as TrialResult));
    child.once('exit', (code) => code !== 0 && reject(new Error(`client process exited with ${code}`)));
  });
}

/** A throw-away redis-server on a free loopback port (rooms across nodes). */
async function startRedis(): Promise<{ url: string; stop(): void }> {
  const port = await new Promise<number>((done) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as { port: number }).port;
      probe.close(() => done(p));
    });
  });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ready, fail) => {
    let log = '';
    child.stdout!.on('data', (d) => /Ready to accept connections/.test((log += d)) && ready());
    child.once('exit', () => fail(new Error(`redis-server exited: ${log}`)));
  });
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

/** `tokstream serve` in its own process, as a second node would be. */
async function serveProcess(modelsDir: string, redisUrl: string): Promise<{ url: string; child: ChildProcess }> {
  const cli = fileURLToPath(new URL('../../bin/tokstream.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--no-auth', '--log-level', 'error', '--no-demo', '--models-dir', modelsDir, '--threads', '1',
    '--max-room-listeners', '10000', '--idle-timeout-ms', '60000', '--redis-url', redisUrl], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((ready, fail) => {
    let log = '';
    child.stderr!.on('data', (d) => {
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec((log += d));
      if (m) ready(m[1]);
    });
    child.once('exit', () => fail(new Error(`node B exited: ${log}`)));
  });
  return { url, child };
}

const row = (xs: number[]) => `${pct(xs, 0.5).toFixed(1).padStart(6)} / ${pct(xs, 0.99).toFixed(1).padStart(6)}`;

async function fanOut(): Promise<void> {
  const modelsDir = mkdtempSync(join(tmpdir(), 'tokstream-bench-rooms-'));
  symlinkSync(MODEL_DIR, join(modelsDir, 'default'));
  const serve = (redisUrl?: string) => startServer(resolveServerConfig({
    port: 0, noAuth: true, logLevel: 'error', demo: false, modelsDir, intraOpThreads: 1, maxRoomListeners: 10_000, idleTimeoutMs: 60_000, redisUrl,
  }));
  const server = await serve();
  const url = server.url.replace('http', 'ws');
  const redis = NODES === 2 ? await startRedis() : undefined;
  const nodeA = redis ? await serve(redis.url) : undefined;
  const nodeB = redis ? await serveProcess(modelsDir, redis.url) : undefined;
  const [urlA, urlB] = [nodeA?.url, nodeB?.url].map((u) => u?.replace('http', 'ws'));
  const rate = server.app.tokstream.registry.models.get('default')!.manifest.sampleRate;
  console.log(`\n1. fan-out: one publisher (${CODEBOOKS} codebooks, ${CHUNK_MS} ms chunks, ${TRIAL_SEC} s of speech in real time) to N listeners, loopback`);
  if (redis) {
    console.log('   each N on 1 node (no Redis), then on 2 nodes sharing the room through Redis: publisher on A, listeners half on A, half on B');
    console.log('   listeners  1 node p50 / p99 (ms)  | 2 nodes: on A p50 / p99   on B p50 / p99   p99 B - A   per packet B - A p50 / p99 | dropped 1 / 2 nodes');
  } else console.log('   listeners  packets  latency p50 / p99 / max (ms)  dropped  kbit/s per listener');
  const began = performance.now();
  const best = [0, 0];
  const failedBelow: (number | undefined)[] = [undefined, undefined];
  let lastStepSec = 0;
  const judge = (k: number, n: number, r: TrialResult) => {
    const passed = pct(r.latenciesMs, 0.99) < CHUNK_MS && r.errors.length === 0 && r.joined === n;
    if (passed && failedBelow[k] === undefined) best[k] = n;
    if (!passed) failedBelow[k] ??= n;
    return pct(r.latenciesMs, 0.99) > 4 * CHUNK_MS || r.errors.length > 0; // far past the budget: larger rooms will not pass either
  };
  for (const n of STEPS) {
    if ((performance.now() - began) / 1000 + lastStepSec * 2 > TIME_LIMIT_SEC) {
      console.log(`   (stopping: the next step would pass --time-limit-sec ${TIME_LIMIT_SEC})`);
      break;
    }
    const t0 = performance.now();
    const r = await runClients(url, n, rate);
    let stop = judge(0, n, r);
    const errors = (x: TrialResult) => (x.errors.length ? `  errors: ${x.errors.slice(0, 2).join('; ')}` : '');
    if (redis) {
      const r2 = await runClients(urlA!, n, rate, [urlA!, urlB!]);
      stop = judge(1, n, r2) && stop;
      const [onA, onB] = r2.byNode;
      const added = pct(onB, 0.99) - pct(onA, 0.99);
      console.log(`   ${String(r.joined).padStart(9)}  ${row(r.latenciesMs).padStart(21)}  | ${row(onA).padStart(23)}  ${row(onB).padStart(15)}  ${added.toFixed(1).padStart(9)}   ${row(r2.hopMs).padStart(25)} | ${r.dropped} / ${r2.dropped}${errors(r)}${errors(r2)}`);
    } else {
      const kbps = (r.bytesPerListener * 8) / r.audioSec / 1000;
      console.log(`   ${String(r.joined).padStart(9)}  ${String(r.packets).padStart(7)}  ${row(r.latenciesMs).padStart(18)} / ${pct(r.latenciesMs, 1).toFixed(1).padStart(6)}  ${String(r.dropped).padStart(13)}  ${kbps.toFixed(2).padStart(8)}${errors(r)}`);
    }
    lastStepSec = (performance.now() - t0) / 1000;
    if (stop) break;
  }
  const pcmKbps = (rate * 16) / 1000;
  for (const [k, label] of (redis ? ['1 node', '2 nodes'] : ['']).entries()) {
    console.log(`   => ${label ? `${label}: ` : ''}p99 packet latency stays under one chunk (${CHUNK_MS} ms) up to ${best[k]} listeners per publisher (every step up to it passed)`);
    const f = failedBelow[k];
    if (f !== undefined && STEPS.some((n) => n > f)) console.log(`      (first failing step: ${f}; later steps are printed above: on a shared machine one step can fail on load alone)`);
  }
  console.log(`   latency includes the encoder run and the client process handling all N sockets; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  if (redis) {
    console.log('   (the Redis hop: p99 of the listeners on B minus p99 of those on A in the same trial, and per packet the median arrival on B minus');
    console.log('    the median arrival on A; node A runs here, node B in its own process, Redis and the client process beside them on this machine)');
  }
  else console.log(`   (16-bit PCM of the same audio would be ${pcmKbps} kbit/s per listener)`);
  await Promise.all([server, nodeA].map((s) => s?.close()));
  nodeB?.child.kill('SIGTERM');
  redis?.stop();
}

async function decoderSpeed(): Promise<void> {
  console.log(`\n2. client-side decoding of ${DECODE_SEC} s of speech, as a listener does (6-frame packets, eager), one thread each`);
  const model = await CodecModel.load(MODEL_DIR, { intraOpThreads: 1 });
  const m = model.manifest;
  const tokens = await model.encode(speech(DECODE_SEC, m.sampleRate), m.sampleRate, { codebooks: CODEBOOKS });
  await model.release();
  const read = (file: string) => new Uint8Array(readFileSync(join(MODEL_DIR, file)));
  const weights = read(m.decoder.file);
  const graphs: [string, DecoderGraph][] = [['windowed decoder.onnx', { windowed: weights }]];
  if (m.decoder.streaming) graphs.push(['stateful decoder_stream.onnx', { streaming: read(m.decoder.streaming.file), weights }]);
  ortWeb.env.wasm.numThreads = 1;
  const runtimes: [string, OrtLike, Record<string, unknown>][] = [
    ['native', ortNode as unknown as OrtLike, { intraOpNumThreads: 1 }],
    ['wasm', ortWeb as unknown as OrtLike, {}],
  ];
  console.log('   runtime: native = onnxruntime-node, wasm = onnxruntime-web (the browser decoder, run in Node)');
  const results = new Map<string, { xrt: number; out: Float32Array }>();
  for (const [runtime, ort, opts] of runtimes) {
    for (const [graphName, graph] of graphs) {
      const decoder = await LocalDecoder.create(ort, m, graph, opts);
      const out = new Float32Array(tokens.numFrames * m.hopLength);
      const decodeAll = async () => {
        const stream = new TokenStreamDecoder(decoder, { numCodebooks: CODEBOOKS });
        for (let f = 0; f < tokens.numFrames; f += 6) {
          for (const a of await stream.push(f, sliceTokens(tokens, f, Math.min(6, tokens.numFrames - f), CODEBOOKS))) out.set(a.pcm, a.firstSample);
        }
        for (const a of await stream.finish()) out.set(a.pcm, a.firstSample);
      };
      await decodeAll(); // warm-up: first runs allocate
      const t0 = performance.now();
      await decodeAll();
      const sec = (performance.now() - t0) / 1000;
      results.set(`${runtime} ${graphName}`, { xrt: DECODE_SEC / sec, out });
      console.log(`   ${runtime.padEnd(6)} ${graphName.padEnd(28)} ${(DECODE_SEC / sec).toFixed(1).padStart(6)}x real time (${((sec * 1000) / (tokens.numFrames / 6)).toFixed(1)} ms per 80 ms packet)`);
      await decoder.release();
    }
  }
  const get = (runtime: string, graph: string) => results.get(`${runtime} ${graph}`)!;
  const compare = (label: string, a: { xrt: number; out: Float32Array }, b: { xrt: number; out: Float32Array }) => {
    let maxDiff = 0;
    for (let i = 0; i < a.out.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.out[i] - b.out[i]));
    console.log(`   ${label} speed ratio ${(a.xrt / b.xrt).toFixed(1)}; max sample difference ${maxDiff.toExponential(2)}`);
  };
  for (const [graph] of graphs) compare(`${graph}: native / wasm`, get('native', graph), get('wasm', graph));
  if (graphs.length === 2) for (const [runtime] of runtimes) compare(`${runtime}: stateful / windowed`, get(runtime, graphs[1][0]), get(runtime, graphs[0][0]));
}

async function main(): Promise<void> {
  console.log(`bench:rooms (node ${process.version}, ${(await import('node:os')).cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  await fanOut();
  await decoderSpeed();
}
