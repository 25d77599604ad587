/**
 * npm run bench:voice — mouth-to-ear latency of the voice path (room publisher -> server -> room
 * listener decoding locally) at 20, 40 and 80 ms chunks, side by side in one run, on loopback.
 *
 * What is measured. A publisher "captures" speech in chunks of C ms (C = the `chunkMs` it asks for)
 * and writes each chunk the moment its last sample is captured (at t0 + (k+1)·C, real-time pacing,
 * f32le at the model rate). A listener decodes the relayed tokens itself with the TypeScript client's
 * decoder (clients/ts/decoder.ts, onnxruntime-node, one thread, the stateful streaming graph) and
 * plays nothing. Mouth-to-ear latency of chunk k = the time the listener first holds decoded PCM
 * through chunk k's last sample, minus the time that sample was captured (t0 + (k+1)·C). It includes
 * waiting for the audio the codec needs after that sample (the decoder's lookahead: 1 frame = 13.3 ms
 * for the default model, which the next captured chunk brings), the encoder run, batcher queueing,
 * relay, socket hops and the client decode. "tokens" latency is the same up to the arrival of the
 * token packet that completes what the decoder needs, before decoding.
 *
 * Capacity. One server keeps N listeners (or P publishers) at chunk C when the decoding listener's
 * p99 mouth-to-ear stays within C + 40 ms + the decoder lookahead (at 20 ms: 60 ms + lookahead, the
 * voice-path target), every other listener's p99 tokens latency within the same bound, no packet is
 * dropped and nothing fails, in a majority of --repeat trials. Percentiles are of the steady conversation: chunks captured in a trial's
 * first --settle-sec are reported apart, as their largest latency ("first s"), since every listener's
 * TCP connection starts in quick-ACK mode and the room's first packets cost more. Listener steps: one
 * publisher, N − 1 token-only listeners (another process, joined first: the room serves them before
 * the decoding listener, which so sees the slowest fan-out). Publisher steps: P publishers at random
 * phases in one room, one token-only listener for all of them, the decoding listener following
 * publisher 1. The server runs here with one onnxruntime thread; the publishers and decoding listener
 * run in one child process (one clock), the token-only listeners in another. Those stand for
 * listeners on other machines but share these cores, so they are lean (bench/lean-listener.ts) and
 * run at a lower CPU priority (--crowd-nice), leaving the server and the measuring listener first
 * call on the CPU as they would have with remote listeners; their own p99 still has to pass.
 *
 * Options: --chunks 20,40,80 --trial-sec 5 --settle-sec 1 --repeat 3 --listener-steps 250,500,750,1000,1250,1500,2000,2500,3000,4000
 *   --publisher-steps 8,16,24,32,48,64 --threads 1 --codebooks 8 --crowd-nice 10 --room-max-queued-bytes <server default>
 *   --time-limit-sec 2400
 *   --model-dir models/default
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { cpus, loadavg, setPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { TokenStreamDecoder } from '../clients/ts/decoder.js';
import { loadNodeDecoder } from '../clients/ts/decoder-node.js';
import { joinRoom, openRoomPublisher } from '../clients/ts/room-client.js';
import { resolveServerConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { joinLean, type LeanListener } from './lean-listener.js';
import { pct, speech } from './room-speech.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const num = (k: string, d: number) => (args.has(k) ? Number(args.get(k)) : d);
const list = (k: string, d: number[]) => (args.has(k) ? args.get(k)!.split(',').map(Number) : d);
const CHUNKS = list('chunks', [20, 40, 80]);
const TRIAL_SEC = num('trial-sec', 5);
const LISTENER_STEPS = list('listener-steps', [250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000]);
const PUBLISHER_STEPS = list('publisher-steps', [8, 16, 24, 32, 48, 64]);
const THREADS = num('threads', 1);
const CODEBOOKS = num('codebooks', 8);
const TIME_LIMIT_SEC = num('time-limit-sec', 2400);
const CROWD_NICE = num('crowd-nice', 10);
const REPEAT = num('repeat', 3);
/** The server's --room-max-queued-bytes (its default when not given); slow-listener probes go out every eighth to quarter of it. */
const ROOM_MAX_QUEUED_BYTES = args.has('room-max-queued-bytes') ? num('room-max-queued-bytes', 0) : undefined;
const SETTLE_SEC = num('settle-sec', 1);
/** --pin 1: the server on core 0, the clients on the others (as if they were other machines); needs taskset and 2+ cores. */
const PIN = num('pin', 0) === 1 && cpus().length > 1;
const SERVER_CORES = '0';
const CLIENT_CORES = `1-${cpus().length - 1}`;
const MODEL_DIR = resolve(args.get('model-dir') ?? 'models/default');
/** Processing allowance on top of one chunk and the decoder lookahead (20 ms chunks: the 60 ms target). */
const ALLOWANCE_MS = 40;
const ROOM = 'voice';

const epoch = () => performance.timeOrigin + performance.now();

/** When publisher p captured the last sample of its chunk k: t0 + phase + (k+1)·C. */
interface Schedule {
  t0: number;
  chunkMs: number;
  chunkSamples: number;
  chunks: number;
  /** publisher number in the room -> phase (ms) */
  phases: Record<number, number>;
  hop: number;
  lookahead: number;
}

/** Frames a listener needs to decode through chunk k's last sample (with the decoder's lookahead). */
const framesNeeded = (s: Schedule, k: number) => Math.floor(((k + 1) * s.chunkSamples - 1) / s.hop) + 1 + s.lookahead;
/** Chunks whose needed frames are all in the audio sent (later ones only complete at the stream's end). */
const steadyChunks = (s: Schedule) => {
  let k = 0;
  while (k < s.chunks && framesNeeded(s, k) * s.hop <= s.chunks * s.chunkSamples) k++;
  return k;
};
const capturedAt = (s: Schedule, p: number, k: number) => s.t0 + s.phases[p] + (k + 1) * s.chunkMs;

/** Per arrival of a publisher's packets (frame end, epoch ms): the tokens latency of each steady chunk. */
function tokensLatency(s: Schedule, p: number, arrivals: [number, number][]): { ms: number[]; missing: number } {
  const ms: number[] = [];
  const n = steadyChunks(s);
  let k = 0;
  for (const [frameEnd, at] of arrivals) {
    for (; k < n && framesNeeded(s, k) <= frameEnd; k++) ms.push(at - capturedAt(s, p, k));
  }
  return { ms, missing: n - k };
}

/** A per-chunk series split at --settle-sec: the room's first second apart from the steady conversation. */
function settle(ms: number[], chunkMs: number): { start: number[]; steady: number[] } {
  const n = Math.ceil((SETTLE_SEC * 1000) / chunkMs);
  return { start: ms.slice(0, n), steady: ms.slice(n) };
}

interface TalkResult {
  schedule: Schedule;
  earMs: number[];
  tokensMs: number[];
  /** decode time per decoded packet (ms) */
  decodeMs: number[];
  missing: number;
  errors: string[];
}

interface CrowdResult {
  joined: number;
  /** CPU time of the token-only listeners' process per wall second, from all joined to the schedule */
  cpu: number;
  /** tokens latency after --settle-sec, all listeners and publishers */
  tokensMs: number[];
  /** the largest tokens latency before it */
  startMax: number;
  missing: number;
  errors: string[];
}

// ---- child: publishers and the decoding listener ----

async function talk(o: { url: string; chunkMs: number; publishers: number; rate: number }): Promise<void> {
  const errors: string[] = [];
  const base = o.url.replace('ws', 'http');
  const decoder = await loadNodeDecoder({ baseUrl: base, model: 'default', threads: 1 });
  const m = decoder.manifest;
  const listener = await joinRoom({ url: `${o.url}/v1/rooms/listen`, room: ROOM, WebSocket: WebSocket as never });
  const chunkSamples = Math.round((o.chunkMs / 1000) * o.rate);
  const chunks = Math.floor((TRIAL_SEC * 1000) / o.chunkMs);
  const audio = speech((chunks * chunkSamples) / o.rate + 0.1, o.rate);
  const pubs = [];
  for (let i = 0; i < o.publishers; i++) {
    const pub = await openRoomPublisher({ url: `${o.url}/v1/rooms/publish`, room: ROOM, WebSocket: WebSocket as never, format: 'f32le', codebooks: CODEBOOKS, chunkMs: o.chunkMs });
    void (async () => {
      for await (const _ of pub) void _; // the publisher's own copy of its tokens
    })().catch((e) => errors.push(`publisher: ${(e as Error).message}`));
    pubs.push(pub);
  }
  const me = pubs[0].ready.publisher;
  const phases: Record<number, number> = {};
  pubs.forEach((p, i) => (phases[p.ready.publisher] = i === 0 ? 0 : Math.random() * o.chunkMs));
  const schedule: Schedule = { t0: epoch() + 100, chunkMs: o.chunkMs, chunkSamples, chunks, phases, hop: m.hopLength, lookahead: m.decoder.lookahead };

  // the decoding listener: follows publisher `me`, notes when each chunk's audio is decoded
  const stream = new TokenStreamDecoder(decoder, { numCodebooks: CODEBOOKS });
  const arrivals: [number, number][] = [];
  const earMs: number[] = [];
  const decodeMs: number[] = [];
  const steady = steadyChunks(schedule);
  let decodedUntil = 0;
  let nextChunk = 0;
  let chain = Promise.resolve();
  const listening = (async () => {
    for await (const ev of listener) {
      if (ev.type === 'publisher_left' && ev.publisher === me) break;
      if (ev.type !== 'tokens' || ev.publisher !== me) continue;
      const { firstFrame, tokens } = ev.packet;
      arrivals.push([firstFrame + tokens.numFrames, performance.timeOrigin + ev.receivedAt]);
      chain = chain.then(async () => {
        const t = performance.now();
        const parts = await stream.push(firstFrame, tokens);
        const done = epoch();
        decodeMs.push(performance.now() - t);
        for (const a of parts) decodedUntil = Math.max(decodedUntil, a.firstSample + a.pcm.length);
        for (; nextChunk < steady && decodedUntil >= (nextChunk + 1) * chunkSamples; nextChunk++) earMs.push(done - capturedAt(schedule, me, nextChunk));
      });
    }
  })().catch((e) => errors.push(`listener: ${(e as Error).message}`));

  // real-time capture: chunk k of publisher p is written when its last sample is captured
  process.send!({ type: 'capturing' });
  await Promise.all(pubs.map(async (pub) => {
    const p = pub.ready.publisher;
    for (let k = 0; k < chunks; k++) {
      const wait = capturedAt(schedule, p, k) - epoch();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pub.write(audio.subarray(k * chunkSamples, (k + 1) * chunkSamples));
    }
    await pub.close();
  }));
  process.send!({ type: 'captured' });
  await Promise.race([listening, new Promise((r) => setTimeout(r, 5000))]);
  await chain;
  listener.close();
  await decoder.release();
  const tokens = tokensLatency(schedule, me, arrivals);
  const result: TalkResult = { schedule, earMs, tokensMs: tokens.ms, decodeMs, missing: steady - earMs.length, errors };
  process.send!(result, () => process.exit(0));
}

// ---- child: token-only listeners ----

async function crowd(o: { url: string; n: number }): Promise<void> {
  const errors: string[] = [];
  const members: LeanListener[] = [];
  const joinOne = async () => {
    members.push(await joinLean(o.url, ROOM, (m) => errors.push(m)));
  };
  for (let i = 0; i < o.n; i += 50) await Promise.all(Array.from({ length: Math.min(50, o.n - i) }, joinOne));
  process.send!({ type: 'joined' });
  const [cpu0, wall0] = [process.cpuUsage(), performance.now()];
  const schedule = await new Promise<Schedule>((res) => process.once('message', (m) => res(m as Schedule)));
  const used = process.cpuUsage(cpu0);
  const cpu = (used.user + used.system) / 1000 / (performance.now() - wall0);
  const tokensMs: number[] = [];
  let startMax = -Infinity;
  let missing = 0;
  for (const { arrivals } of members) {
    for (const p of Object.keys(schedule.phases).map(Number)) {
      const r = tokensLatency(schedule, p, arrivals.of(p));
      const { start, steady } = settle(r.ms, schedule.chunkMs);
      for (const x of steady) tokensMs.push(x);
      for (const x of start) startMax = Math.max(startMax, x);
      missing += r.missing;
    }
  }
  for (const m of members) m.close();
  const result: CrowdResult = { joined: members.length, cpu, tokensMs, startMax, missing, errors };
  process.send!(result, () => process.exit(0));
}

// ---- parent: the server and the search ----

function child(mode: 'talk' | 'crowd', opts: object): { proc: ChildProcess; next: <T>() => Promise<T> } {
  const proc = fork(fileURLToPath(import.meta.url), [`--${mode}`, JSON.stringify(opts), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (PIN) pin(proc.pid!, CLIENT_CORES);
  const inbox: unknown[] = [];
  const waiting: ((m: unknown) => void)[] = [];
  proc.on('message', (m) => (waiting.length ? waiting.shift()!(m) : inbox.push(m)));
  const next = <T>() => new Promise<T>((res, rej) => {
    if (inbox.length) return res(inbox.shift() as T);
    waiting.push(res as (m: unknown) => void);
    proc.once('exit', (code) => code !== 0 && rej(new Error(`${mode} process exited with ${code}`)));
  });
  return { proc, next };
}

interface Step {
  listeners: number;
  publishers: number;
  /** after --settle-sec */
  ear: { p50: number; p99: number };
  tokens: { p50: number; p99: number };
  crowdTokensP99: number;
  /** the largest ear latency of the decoding listener, and tokens latency of the others, in the first --settle-sec */
  startEarMax: number;
  startCrowdMax: number;
  decodeP99: number;
  /** CPU time of the server process (all its threads) per wall second while publishers spoke */
  serverCpu: number;
  /** the same for the token-only listeners' process (0 when there is none) */
  crowdCpu: number;
  budget: number;
  missing: number;
  errors: string[];
  ok: boolean;
}

async function step(url: string, rate: number, chunkMs: number, budgetMs: number, listeners: number, publishers: number): Promise<Step> {
  const crowdProc = listeners > 1 || publishers > 1 ? child('crowd', { url, n: Math.max(1, listeners - 1) }) : undefined;
  if (crowdProc && CROWD_NICE) setPriority(crowdProc.proc.pid!, CROWD_NICE);
  if (crowdProc) await crowdProc.next();
  const talker = child('talk', { url, chunkMs, publishers, rate });
  await talker.next();
  const [cpu0, wall0] = [process.cpuUsage(), performance.now()];
  await talker.next();
  const cpu = process.cpuUsage(cpu0);
  const serverCpu = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  const t = await talker.next<TalkResult>();
  let c: CrowdResult = { joined: 0, cpu: 0, tokensMs: [], startMax: NaN, missing: 0, errors: [] };
  if (crowdProc) {
    crowdProc.proc.send(t.schedule);
    c = await crowdProc.next<CrowdResult>();
  }
  const errors = [...t.errors, ...c.errors];
  const missing = t.missing + c.missing;
  const ear = settle(t.earMs, chunkMs);
  const tokens = settle(t.tokensMs, chunkMs).steady;
  const s: Step = {
    listeners: c.joined + 1, publishers,
    ear: { p50: pct(ear.steady, 0.5), p99: pct(ear.steady, 0.99) },
    tokens: { p50: pct(tokens, 0.5), p99: pct(tokens, 0.99) },
    crowdTokensP99: pct(c.tokensMs, 0.99),
    startEarMax: Math.max(...ear.start), startCrowdMax: c.startMax,
    decodeP99: pct(t.decodeMs, 0.99),
    serverCpu, crowdCpu: c.cpu, budget: budgetMs, missing, errors, ok: false,
  };
  s.ok = s.ear.p99 <= budgetMs && !(s.crowdTokensP99 > budgetMs) && missing === 0 && errors.length === 0 && c.joined === (crowdProc ? Math.max(1, listeners - 1) : 0);
  return s;
}

const f = (x: number, w = 6) => (Number.isFinite(x) ? x.toFixed(1) : '–').padStart(w);

const HEADER = '   chunk  publishers  listeners  ear p50 / p99 ms  tokens p50 / p99  others p99 tokens  first s: ear / others max  decode p99  server CPU  others CPU';

function show(chunkMs: number, s: Step): void {
  console.log(`   ${String(chunkMs).padStart(3)} ms  ${String(s.publishers).padStart(10)}  ${String(s.listeners).padStart(9)}  ${f(s.ear.p50)} / ${f(s.ear.p99)}  ${f(s.tokens.p50)} / ${f(s.tokens.p99)}  ${f(s.crowdTokensP99, 12)}  ${f(s.startEarMax, 12)} / ${f(s.startCrowdMax, 10)}  ${f(s.decodeP99, 9)}  ${(s.serverCpu * 100).toFixed(0).padStart(9)} %  ${(s.crowdCpu * 100).toFixed(0).padStart(9)} %  ${s.ok ? 'kept' : 'NOT kept'}${s.missing ? `  ${s.missing} chunks never arrived` : ''}${s.errors.length ? `  errors: ${s.errors.slice(0, 2).join('; ')}` : ''}`);
}

/**
 * Runs `values` in order, each at every chunk size (side by side, at the same moments' load) until
 * a trial's median is far past the budget; returns per chunk the largest value kept with every smaller one.
 */
async function search(label: string, values: number[], run: (chunkMs: number, v: number) => Promise<Step>, deadline: number): Promise<Map<number, number>> {
  const best = new Map(CHUNKS.map((c) => [c, 0]));
  const failed = new Set<number>();
  const alive = new Set(CHUNKS);
  let last = 0;
  console.log(`\n${label}`);
  console.log(HEADER);
  for (const v of values) {
    if (alive.size === 0) break;
    if (performance.now() + 2 * last > deadline) {
      console.log('   (stopping: the next step would pass --time-limit-sec)');
      break;
    }
    const t0 = performance.now();
    // REPEAT trials per chunk size, the chunk sizes taking turns (the same moments' load); a step is
    // kept by a majority of its trials, and stops being run once its majority is decided
    const votes = new Map([...alive].map((c) => [c, { kept: 0, failed: 0, far: false }]));
    const decided = (c: number) => {
      const t = votes.get(c)!;
      return t.far || t.kept > REPEAT / 2 || t.failed >= REPEAT / 2;
    };
    for (let r = 0; r < REPEAT; r++) {
      for (const c of [...alive]) {
        if (decided(c)) continue;
        const s = await run(c, v);
        show(c, s);
        const t = votes.get(c)!;
        if (s.ok) t.kept++;
        else t.failed++;
        // a step far off (on a shared machine one step can fail on load alone) ends this chunk size's search
        if (s.ear.p50 > 2 * s.budget || s.missing > 0 || s.errors.length > 0) t.far = true;
      }
    }
    for (const c of [...alive]) {
      const t = votes.get(c)!;
      const ok = !t.far && t.kept > REPEAT / 2;
      if (REPEAT > 1) console.log(`   ${String(c).padStart(3)} ms  ${String(v).padStart(10)}: ${ok ? 'kept' : 'NOT kept'} (${t.kept} of ${t.kept + t.failed} trials kept)`);
      if (ok && !failed.has(c)) best.set(c, v);
      if (!ok) failed.add(c);
      if (t.far) alive.delete(c);
    }
    last = performance.now() - t0;
  }
  return best;
}

/** Sets the CPU affinity of every thread of `pid` (threads it starts later inherit it). */
function pin(pid: number, cores: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cores, String(pid)], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  console.log(`bench:voice (node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  if (PIN) {
    pin(process.pid, SERVER_CORES);
    console.log(`pinned: the server (this process, its onnxruntime threads) on core ${SERVER_CORES}, the client processes on ${CLIENT_CORES}`);
  }
  const modelsDir = mkdtempSync(join(tmpdir(), 'tokstream-bench-voice-'));
  symlinkSync(MODEL_DIR, join(modelsDir, 'default'));
  const server = await startServer(resolveServerConfig({
    port: 0, noAuth: true, logLevel: 'error', demo: false, modelsDir, intraOpThreads: THREADS, maxStreams: 4096, maxRoomPublishers: 4096,
    maxRoomListeners: 100_000, admissionMaxQueueMs: 1e9, idleTimeoutMs: 60_000,
    ...(ROOM_MAX_QUEUED_BYTES === undefined ? {} : { roomMaxQueuedBytes: ROOM_MAX_QUEUED_BYTES }),
  }));
  const url = server.url.replace('http', 'ws');
  const m = server.app.tokstream.registry.models.get('default')!.manifest;
  const frameMs = (1000 * m.hopLength) / m.sampleRate;
  const lookaheadMs = m.decoder.lookahead * frameMs + (1000 * m.encoder.lookahead) / m.sampleRate;
  const budget = (c: number) => c + ALLOWANCE_MS + lookaheadMs;
  console.log(`codec lookahead (manifest.json): encoder ${m.encoder.lookahead} samples, decoder ${m.decoder.lookahead} frame = ${lookaheadMs.toFixed(1)} ms at ${(1000 / frameMs).toFixed(0)} frames/s`);
  console.log(`mouth-to-ear ("ear"): a captured chunk's last sample -> the decoding listener holds it as PCM; ${CODEBOOKS} codebooks, ${TRIAL_SEC} s trials, server ${THREADS} onnxruntime thread(s)`);
  console.log(`floor: that sample's decoder lookahead frame comes with the next chunk, so ear >= one chunk`);
  console.log(`"kept": ear p99 <= chunk + ${ALLOWANCE_MS} ms + ${lookaheadMs.toFixed(1)} ms lookahead (${CHUNKS.map((c) => `${c} ms: ${budget(c).toFixed(1)}`).join(', ')}), the other listeners' tokens p99 too, nothing lost`);
  const deadline = performance.now() + TIME_LIMIT_SEC * 1000;
  await step(url, m.sampleRate, 80, Infinity, 1, 1); // warm-up: first runs allocate
  const quiet = new Map<number, Step>();
  console.log('\none publisher, one decoding listener');
  console.log(HEADER);
  for (const c of CHUNKS) {
    quiet.set(c, await step(url, m.sampleRate, c, budget(c), 1, 1));
    show(c, quiet.get(c)!);
  }
  const listeners = await search('listeners: one publisher, N listeners', LISTENER_STEPS, (c, n) => step(url, m.sampleRate, c, budget(c), n, 1), deadline);
  const publishers = await search('publishers: P publishers in one room, two listeners', PUBLISHER_STEPS, (c, p) => step(url, m.sampleRate, c, budget(c), 2, p), deadline);
  console.log('\nsummary');
  console.log('   chunk  ear p50 / p99 ms (1 publisher, 1 listener)  budget  listeners kept  publishers kept');
  for (const c of CHUNKS) {
    const q = quiet.get(c)!;
    console.log(`   ${String(c).padStart(3)} ms  ${f(q.ear.p50)} / ${f(q.ear.p99)}  ${' '.repeat(24)}${f(budget(c))}  ${String(q.ok ? listeners.get(c) : 0).padStart(14)}  ${String(q.ok ? publishers.get(c) : 0).padStart(15)}`);
  }
  if (listeners.get(20) !== undefined && listeners.get(80)) console.log(`   listeners kept at 20 ms / at 80 ms: ${(listeners.get(20)! / listeners.get(80)!).toFixed(2)}`);
  console.log(`   (steps: listeners ${LISTENER_STEPS.join(', ')}; publishers ${PUBLISHER_STEPS.join(', ')}; a count is the largest step passed with every smaller one; load average now ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  await server.close();
}

if (args.has('talk')) void talk(JSON.parse(args.get('talk')!));
else if (args.has('crowd')) void crowd(JSON.parse(args.get('crowd')!));
else void main();
