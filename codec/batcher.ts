/**
 * Dynamic batcher: ONE per model, shared by every user of that model in the process
 * (WebSocket streams, HTTP bulk jobs). Ready windows of many streams with equal tensor
 * shapes are stacked into one ONNX run.
 *
 * API
 *   const batcher = new ModelBatcher(model, { maxBatch: 16, maxWaitMs: 4, bulkShare: 0.5 });
 *   // a StreamEncoder window -> its kept frames, first `codebooks` codebooks
 *   const tokens: TokenBlock = await batcher.submitEncode(window, { priority: 'realtime', streamId, signal, codebooks });
 *   // a StreamDecoder window -> its kept model-rate samples
 *   const pcm: Float32Array = await batcher.submitDecode(window, { priority: 'bulk', streamId, signal });
 *   batcher.dropStream(streamId);   // rejects (CodecError 'aborted') everything still queued for a stream
 *   batcher.stats();                // queue lengths, runs in flight, queue wait, busy shares (metrics, admission, readiness)
 *   await batcher.close();          // rejects queued work, waits for runs in flight
 *
 * Scheduling
 * - Two priority classes. 'realtime' work always goes first. 'bulk' work fills the slots a
 *   realtime batch leaves free (same shape), or runs alone when no realtime work is queued; while
 *   realtime work was seen within the last `shareWindowMs`, bulk runs may take at most `bulkShare`
 *   of the model's wall time over that window, and a bulk-only run is sized (from measured run
 *   times) to last about `bulkRunBudgetMs`, since realtime work arriving meanwhile waits for it.
 *   With no realtime traffic bulk gets the whole model. Keep bulk windows short: one window is
 *   the smallest bulk run.
 * - Fairness: each stream has its own FIFO; a batch takes the head of each stream in round-robin
 *   order (one window per stream), and a second window of the same stream only when the first pass
 *   left slots free. The batch's shape is that of the oldest waiting head, so no shape starves.
 * - Stateful streaming chunks (EncodeWindow.carry, DecodeWindow.carry) run with their stream's state,
 *   which the run replaces with the next state: a stream has at most one such chunk in a run or in
 *   flight. A decode tail window runs nothing: it resolves to the stream's final samples once the
 *   stream's last chunk has run.
 * - A batch starts when it is full (`maxBatch`) or its oldest window has waited `maxWaitMs`.
 * - Results are delivered by promise; nothing here waits on a consumer, so a slow or stuck stream
 *   never delays the others. An aborted `signal` (disconnect) drops that window from the queue;
 *   a window already running finishes and its result is discarded by the caller.
 * - Token validity is the caller's job (StreamDecoder.push validates): one stream's bad codes
 *   must never fail a shared batch.
 */
import { CodecError } from './pure/errors.js';
import type { ModelManifest } from './manifest.js';
import { tailAudio, type DecodeWindow } from './pure/stream-decoder.js';
import { sliceTokens, type EncodeWindow } from './stream-encoder.js';
import type { StreamCarry, TokenBlock } from './pure/types.js';

export type Priority = 'realtime' | 'bulk';

export interface SubmitOptions {
  priority?: Priority;
  /** Fairness and cancellation unit: one stream, one HTTP job. */
  streamId: string;
  signal?: AbortSignal;
}

export interface EncodeSubmitOptions extends SubmitOptions {
  /** Keep the first N codebooks (default: all). */
  codebooks?: number;
}

/** What the batcher needs from a model (CodecModel satisfies it). */
export interface BatchModel {
  readonly manifest: ModelManifest;
  encodeBatch(audio: Float32Array[]): Promise<TokenBlock[]>;
  /** The stateful streaming encoder (models whose manifest has encoder.streaming). */
  encodeStepBatch?(audio: Float32Array[], states: Float32Array[]): Promise<{ tokens: TokenBlock[]; states: Float32Array[] }>;
  decodeBatch(blocks: TokenBlock[]): Promise<Float32Array[]>;
  /** The stateful streaming decoder (models whose manifest has decoder.streaming). */
  decodeStepBatch?(blocks: TokenBlock[], states: Float32Array[]): Promise<{ audio: Float32Array[]; finals: Float32Array[]; states: Float32Array[] }>;
}

export interface BatcherOptions {
  /** Most windows in one ONNX run (default 16). */
  maxBatch?: number;
  /** Longest a ready window waits for company before its batch starts (default 4 ms). */
  maxWaitMs?: number;
  /** ONNX runs in flight at once (default 1: on CPU one run already uses every core). */
  maxConcurrent?: number;
  /** Share of wall time bulk runs may take while realtime work is around (default 0.5). */
  bulkShare?: number;
  /** Most bulk windows in one run (default maxBatch). */
  bulkMaxBatch?: number;
  /**
   * While realtime work is around, a bulk-only run is sized to take about this long at most
   * (estimated from earlier runs; at least one window): it delays realtime work by that much
   * (default 40 ms).
   */
  bulkRunBudgetMs?: number;
  /** Window over which the bulk share is measured (default 2000 ms). */
  shareWindowMs?: number;
  /** Most windows queued per class; beyond it submit rejects with 'limit_exceeded' (default 4096). */
  maxQueued?: number;
  /** Called after every run (metrics). */
  onBatch?: (info: BatchInfo) => void;
}

export interface BatchInfo {
  kind: 'encode' | 'decode';
  size: number;
  realtime: number;
  bulk: number;
  runMs: number;
  /** Per window: its class and how long it queued. */
  waits: { priority: Priority; ms: number }[];
  /** Model-rate audio seconds the run covered (kept part). */
  audioSec: number;
  error?: string;
}

export interface BatcherStats {
  queuedRealtime: number;
  queuedBulk: number;
  inFlight: number;
  streams: number;
  /**
   * Realtime queue wait (ms) for admission: how long the realtime work queued now has waited to
   * run since it became runnable (the front window of its stream, that stream's previous chunk
   * done); the longest such wait, 0 when nothing runnable waits. One stream's own backlog (a burst
   * of chunks, each waiting for the one before) does not count: another stream's window would run
   * beside it. It follows the queue: it is 0 again as soon as the queued work has started.
   */
  realtimeWaitMs: number;
  /** Stateful streams with chunks queued or running (their carries are referenced until then). */
  carries: number;
  /**
   * Share of the model's capacity (wall time x `maxConcurrent`) spent running batches over the last
   * `shareWindowMs`, runs still in flight included: 0 idle, 1 never idle.
   */
  busyShare: number;
  /**
   * The realtime part of `busyShare` (a mixed batch's time is split by its window count). Bulk work
   * yields to realtime work, so this, not `busyShare`, says how close streams are to the limit.
   */
  realtimeBusyShare: number;
}

interface Job {
  kind: 'encode' | 'decode';
  key: string;
  priority: Priority;
  streamId: string;
  enqueuedAt: number;
  keptSamples: number;
  run: (out: TokenBlock | Float32Array) => unknown;
  input: Float32Array | TokenBlock;
  /** stateful chunk (encode or decode): the stream's state */
  carry?: StreamCarry;
  resolve: (v: never) => void;
  reject: (e: Error) => void;
  detach: () => void;
}

interface InFlightRun {
  start: number;
  /** Share of its windows that are realtime. */
  realtime: number;
}

/** Per-class queues: one FIFO per stream, visited round-robin. */
class FairQueue {
  private readonly streams = new Map<string, Job[]>();
  /** Per stream, since when its current front window has been at the front. */
  private readonly frontSince = new Map<string, number>();
  private order: string[] = [];
  private cursor = 0;
  size = 0;

  push(job: Job): void {
    let q = this.streams.get(job.streamId);
    if (!q) {
      q = [];
      this.streams.set(job.streamId, q);
      this.order.push(job.streamId);
      this.frontSince.set(job.streamId, job.enqueuedAt);
    }
    q.push(job);
    this.size++;
  }

  remove(job: Job): boolean {
    const q = this.streams.get(job.streamId);
    const i = q ? q.indexOf(job) : -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    this.size--;
    if (q.length === 0) this.forget(job.streamId);
    else if (i === 0) this.frontSince.set(job.streamId, now());
    return true;
  }

  /** Each stream's front window, with the time it reached the front. */
  *fronts(): Iterable<{ job: Job; since: number }> {
    for (const [id, q] of this.streams) yield { job: q[0], since: this.frontSince.get(id)! };
  }

  removeStream(streamId: string): Job[] {
    const q = this.streams.get(streamId) ?? [];
    this.size -= q.length;
    this.forget(streamId);
    return q;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** The head that has waited longest, among heads whose carry is not busy. */
  oldestHead(busy: Set<StreamCarry> = new Set()): Job | undefined {
    let best: Job | undefined;
    for (const q of this.streams.values()) {
      if (!blocked(q[0], busy) && (!best || q[0].enqueuedAt < best.enqueuedAt)) best = q[0];
    }
    return best;
  }

  /** Jobs with `key` one batch could take now (at most one per carry), up to `limit`. */
  countKey(key: string, limit: number, busy: Set<StreamCarry>): number {
    let n = 0;
    for (const q of this.streams.values()) {
      for (const j of q) {
        if (j.key !== key || blocked(j, busy)) break;
        if (++n >= limit) return n;
        if (j.carry) break;
      }
    }
    return n;
  }

  /**
   * Takes up to `room` jobs with `key`: stream heads in round-robin order, then further passes.
   * A job whose carry is busy is not taken (nor anything behind it); taking one marks its carry busy.
   */
  take(key: string, room: number, busy: Set<StreamCarry>): Job[] {
    const out: Job[] = [];
    if (room <= 0 || this.order.length === 0) return out;
    let progress = true;
    let lastServed = -1;
    while (out.length < room && progress) {
      progress = false;
      const n = this.order.length;
      for (let step = 0; step < n && out.length < room; step++) {
        const idx = (this.cursor + step) % n;
        const q = this.streams.get(this.order[idx])!;
        if (q.length > 0 && q[0].key === key && !blocked(q[0], busy)) {
          const job = q.shift()!;
          if (q.length > 0) this.frontSince.set(this.order[idx], now());
          if (job.carry) busy.add(job.carry);
          out.push(job);
          this.size--;
          lastServed = idx;
          progress = true;
        }
      }
    }
    if (lastServed >= 0) this.cursor = lastServed + 1;
    for (const id of [...this.order]) if (this.streams.get(id)!.length === 0) this.forget(id);
    return out;
  }

  private forget(streamId: string): void {
    const i = this.order.indexOf(streamId);
    this.streams.delete(streamId);
    this.frontSince.delete(streamId);
    if (i < 0) return;
    this.order.splice(i, 1);
    if (i < this.cursor) this.cursor--;
    if (this.cursor >= this.order.length) this.cursor = 0;
  }

  *all(): Iterable<Job> {
    for (const q of this.streams.values()) yield* q;
  }
}

function blocked(job: Job, busy: Set<StreamCarry>): boolean {
  return job.carry !== undefined && busy.has(job.carry);
}

const now = () => performance.now();

export class ModelBatcher {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  private readonly maxConcurrent: number;
  private readonly bulkShare: number;
  private readonly bulkMaxBatch: number;
  private readonly bulkRunBudgetMs: number;
  /** Moving average of run time per window frame, per kind: sizes bulk runs to the budget. */
  private readonly msPerFrame: Record<Job['kind'], number | undefined> = { encode: undefined, decode: undefined };
  private readonly shareWindowMs: number;
  private readonly maxQueued: number;
  private readonly onBatch?: (info: BatchInfo) => void;
  private readonly queues: Record<Priority, FairQueue> = { realtime: new FairQueue(), bulk: new FairQueue() };
  private readonly running = new Set<Promise<void>>();
  /** Runs in flight: when each started and its realtime share of windows (for busy shares). */
  private readonly runsInFlight = new Set<InFlightRun>();
  /** Carries of stateful chunks taken into a run that has not finished. */
  private readonly busy = new Set<StreamCarry>();
  /** When each carry's last run ended: its stream's next chunk is runnable from then on. */
  private readonly carryFreedAt = new WeakMap<StreamCarry, number>();
  /** Per carry, the result of its most recently submitted chunk (what a tail window waits for). */
  private readonly lastChunk = new Map<StreamCarry, Promise<unknown>>();
  /** Recent runs (the last `shareWindowMs`): when they ended, how long they took, how much of it was bulk work. */
  private history: { end: number; ms: number; bulkMs: number }[] = [];
  private lastRealtimeAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly model: BatchModel, opts: BatcherOptions = {}) {
    this.maxBatch = positiveInt(opts.maxBatch ?? 16, 'maxBatch');
    this.maxWaitMs = Math.max(0, opts.maxWaitMs ?? 4);
    this.maxConcurrent = positiveInt(opts.maxConcurrent ?? 1, 'maxConcurrent');
    this.bulkShare = Math.min(1, Math.max(0, opts.bulkShare ?? 0.5));
    this.bulkMaxBatch = positiveInt(opts.bulkMaxBatch ?? this.maxBatch, 'bulkMaxBatch');
    this.bulkRunBudgetMs = Math.max(0, opts.bulkRunBudgetMs ?? 40);
    this.shareWindowMs = Math.max(1, opts.shareWindowMs ?? 2000);
    this.maxQueued = positiveInt(opts.maxQueued ?? 4096, 'maxQueued');
    this.onBatch = opts.onBatch;
  }

  get manifest(): ModelManifest {
    return this.model.manifest;
  }

  submitEncode(window: EncodeWindow, opts: EncodeSubmitOptions): Promise<TokenBlock> {
    const codebooks = opts.codebooks ?? this.model.manifest.numCodebooks;
    if (window.carry && !this.model.encodeStepBatch) return Promise.reject(new CodecError('invalid_argument', `model ${this.model.manifest.name} has no streaming encoder`));
    const key = `${window.carry ? 's' : 'e'}${window.audio.length}`;
    return this.enqueue<TokenBlock>('encode', key, window.audio, window.keepCount * this.model.manifest.hopLength, opts, (out) =>
      sliceTokens(out as TokenBlock, window.keepFrom, window.keepCount, codebooks),
    window.carry);
  }

  submitDecode(window: DecodeWindow, opts: SubmitOptions): Promise<Float32Array> {
    const t = window.tokens;
    if (window.carry && !this.model.decodeStepBatch) return Promise.reject(new CodecError('invalid_argument', `model ${this.model.manifest.name} has no streaming decoder`));
    if (window.tail) return (this.lastChunk.get(window.carry!) ?? Promise.resolve()).then(() => tailAudio(window));
    const key = `${window.carry ? 't' : 'd'}${t.numCodebooks}x${t.numFrames}`;
    return this.enqueue<Float32Array>('decode', key, t, window.keepCount, opts, (out) =>
      (out as Float32Array).subarray(window.keepFrom, window.keepFrom + window.keepCount),
    window.carry);
  }

  /** Rejects everything queued for a stream (it went away). */
  dropStream(streamId: string): number {
    let n = 0;
    for (const q of Object.values(this.queues)) {
      for (const job of q.removeStream(streamId)) {
        job.detach();
        job.reject(new CodecError('aborted', `stream ${streamId} went away`));
        n++;
      }
    }
    return n;
  }

  stats(): BatcherStats {
    const ids = new Set<string>();
    for (const q of Object.values(this.queues)) for (const j of q.all()) ids.add(j.streamId);
    const t = now();
    const busy = this.busyMs(t);
    const capacity = this.shareWindowMs * this.maxConcurrent;
    return {
      queuedRealtime: this.queues.realtime.size,
      queuedBulk: this.queues.bulk.size,
      inFlight: this.running.size,
      streams: ids.size,
      realtimeWaitMs: this.runnableWaitMs(),
      carries: this.lastChunk.size,
      busyShare: Math.min(1, busy.total / capacity),
      realtimeBusyShare: Math.min(1, busy.realtime / capacity),
    };
  }

  /** Model time spent running over the last `shareWindowMs` (the part of each run inside the window). */
  private busyMs(t: number): { total: number; realtime: number } {
    const since = t - this.shareWindowMs;
    this.pruneHistory(since);
    let total = 0;
    let realtime = 0;
    for (const h of this.history) {
      const inside = Math.min(h.ms, h.end - since);
      total += inside;
      realtime += h.ms > 0 ? (inside * (h.ms - h.bulkMs)) / h.ms : 0;
    }
    for (const r of this.runsInFlight) {
      const inside = t - Math.max(r.start, since);
      total += inside;
      realtime += inside * r.realtime;
    }
    return { total, realtime };
  }

  private pruneHistory(since: number): void {
    if (this.history.length > 0 && this.history[0].end <= since) this.history = this.history.filter((h) => h.end > since);
  }

  /** The longest a runnable realtime window has waited (see BatcherStats.realtimeWaitMs). */
  private runnableWaitMs(): number {
    const t = now();
    let longest = 0;
    for (const { job, since } of this.queues.realtime.fronts()) {
      if (blocked(job, this.busy)) continue; // waits for its own stream's running chunk
      const runnableSince = Math.max(since, (job.carry && this.carryFreedAt.get(job.carry)) || 0);
      longest = Math.max(longest, t - runnableSince);
    }
    return longest;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    for (const q of Object.values(this.queues)) {
      for (const job of [...q.all()]) {
        q.remove(job);
        job.detach();
        job.reject(new CodecError('aborted', 'batcher closed'));
      }
    }
    await Promise.allSettled([...this.running]);
  }

  private enqueue<T>(
    kind: Job['kind'],
    key: string,
    input: Job['input'],
    keptSamples: number,
    opts: SubmitOptions,
    run: (out: TokenBlock | Float32Array) => T,
    carry?: StreamCarry,
  ): Promise<T> {
    const priority = opts.priority ?? 'realtime';
    if (this.closed) return Promise.reject(new CodecError('aborted', 'batcher closed'));
    if (opts.signal?.aborted) return Promise.reject(new CodecError('aborted', 'aborted'));
    if (priority !== 'realtime' && priority !== 'bulk') return Promise.reject(new CodecError('invalid_argument', `unknown priority ${priority}`));
    const queue = this.queues[priority];
    if (queue.size >= this.maxQueued) {
      return Promise.reject(new CodecError('limit_exceeded', `model ${this.model.manifest.name}: ${queue.size} ${priority} windows queued (limit ${this.maxQueued})`));
    }
    const result = new Promise<T>((resolve, reject) => {
      const job: Job = {
        kind, key, priority, input, keptSamples, run, carry,
        streamId: opts.streamId,
        enqueuedAt: now(),
        resolve: resolve as (v: never) => void,
        reject,
        detach: () => opts.signal?.removeEventListener('abort', onAbort),
      };
      const onAbort = () => {
        if (queue.remove(job)) reject(new CodecError('aborted', 'aborted'));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (priority === 'realtime') this.lastRealtimeAt = job.enqueuedAt;
      queue.push(job);
      this.pump();
    });
    if (carry) {
      this.lastChunk.set(carry, result);
      const forget = () => {
        if (this.lastChunk.get(carry) === result) this.lastChunk.delete(carry);
      };
      result.then(forget, forget);
    }
    return result;
  }

  /** Starts every batch that is due; otherwise arms a timer for the next one. */
  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    let nextCheck = Infinity;
    while (!this.closed && this.running.size < this.maxConcurrent) {
      const t = now();
      const plan = this.planBatch(t);
      if (plan.jobs) {
        this.start(plan.jobs);
        continue;
      }
      nextCheck = plan.retryInMs;
      break;
    }
    if (Number.isFinite(nextCheck) && this.running.size < this.maxConcurrent) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, Math.ceil(nextCheck)));
    }
  }

  private planBatch(t: number): { jobs?: Job[]; retryInMs: number } {
    const rt = this.queues.realtime;
    const bulk = this.queues.bulk;
    const head = rt.oldestHead(this.busy);
    if (head) {
      const waited = t - head.enqueuedAt;
      if (waited < this.maxWaitMs && rt.countKey(head.key, this.maxBatch, this.busy) < this.maxBatch) return { retryInMs: this.maxWaitMs - waited };
      const jobs = rt.take(head.key, this.maxBatch, this.busy);
      const room = Math.min(this.maxBatch - jobs.length, this.bulkMaxBatch);
      if (room > 0 && bulk.size > 0 && this.bulkAllowed(t)) jobs.push(...bulk.take(head.key, room, this.busy));
      return { jobs, retryInMs: Infinity };
    }
    const bhead = bulk.oldestHead(this.busy);
    if (!bhead) return { retryInMs: Infinity };
    if (!this.bulkAllowed(t)) return { retryInMs: 5 };
    const size = this.realtimeRecent(t) ? this.bulkBatchWithinBudget(bhead) : this.bulkMaxBatch;
    const waited = t - bhead.enqueuedAt;
    if (waited < this.maxWaitMs && bulk.countKey(bhead.key, size, this.busy) < size) return { retryInMs: this.maxWaitMs - waited };
    return { jobs: bulk.take(bhead.key, size, this.busy), retryInMs: Infinity };
  }

  private realtimeRecent(t: number): boolean {
    return this.lastRealtimeAt >= t - this.shareWindowMs;
  }

  /** Frames a window feeds the model (the unit of its cost). */
  private frames(job: Job): number {
    return job.kind === 'encode' ? (job.input as Float32Array).length / this.model.manifest.hopLength : (job.input as TokenBlock).numFrames;
  }

  private bulkBatchWithinBudget(head: Job): number {
    const perFrame = this.msPerFrame[head.kind];
    if (perFrame === undefined) return 1; // no estimate yet: one window
    return Math.max(1, Math.min(this.bulkMaxBatch, Math.floor(this.bulkRunBudgetMs / (perFrame * this.frames(head)))));
  }

  /** Bulk may run unless realtime work is around and bulk already had its share of recent wall time. */
  private bulkAllowed(t: number): boolean {
    this.pruneHistory(t - this.shareWindowMs);
    if (!this.realtimeRecent(t)) return true;
    const bulkMs = this.history.reduce((s, h) => s + h.bulkMs, 0);
    return bulkMs < this.bulkShare * this.shareWindowMs;
  }

  private start(jobs: Job[]): void {
    const run: InFlightRun = { start: now(), realtime: jobs.filter((j) => j.priority === 'realtime').length / jobs.length };
    this.runsInFlight.add(run);
    const p = this.runBatch(jobs, run).finally(() => {
      this.running.delete(p);
      this.pump();
    });
    this.running.add(p);
  }

  /** Stateful encoder chunks: each stream's state goes in, the next state replaces it. */
  private async runEncodeSteps(jobs: Job[]): Promise<TokenBlock[]> {
    const { tokens, states } = await this.model.encodeStepBatch!(
      jobs.map((j) => j.input as Float32Array),
      jobs.map((j) => j.carry!.value),
    );
    jobs.forEach((j, i) => (j.carry!.value = states[i]));
    return tokens;
  }

  /** Stateful decoder chunks: likewise, and each stream's final samples are kept with its state. */
  private async runDecodeSteps(jobs: Job[]): Promise<Float32Array[]> {
    const { audio, finals, states } = await this.model.decodeStepBatch!(
      jobs.map((j) => j.input as TokenBlock),
      jobs.map((j) => j.carry!.value),
    );
    jobs.forEach((j, i) => Object.assign(j.carry!, { value: states[i], final: finals[i] }));
    return audio;
  }

  private async runBatch(jobs: Job[], run: InFlightRun): Promise<void> {
    const t0 = now();
    for (const j of jobs) j.detach();
    const kind = jobs[0].kind;
    let outputs: (TokenBlock | Float32Array)[] | undefined;
    let error: Error | undefined;
    try {
      if (kind === 'decode') {
        outputs = jobs[0].carry ? await this.runDecodeSteps(jobs) : await this.model.decodeBatch(jobs.map((j) => j.input as TokenBlock));
      } else {
        outputs = jobs[0].carry ? await this.runEncodeSteps(jobs) : await this.model.encodeBatch(jobs.map((j) => j.input as Float32Array));
      }
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
    } finally {
      const freedAt = now();
      for (const j of jobs) {
        if (!j.carry) continue;
        this.busy.delete(j.carry);
        this.carryFreedAt.set(j.carry, freedAt);
      }
    }
    const runMs = now() - t0;
    if (!error) {
      const sample = runMs / (jobs.length * this.frames(jobs[0]));
      const prev = this.msPerFrame[kind];
      this.msPerFrame[kind] = prev === undefined ? sample : 0.8 * prev + 0.2 * sample;
    }
    const bulkCount = jobs.filter((j) => j.priority === 'bulk').length;
    this.runsInFlight.delete(run); // from here on the run counts in history
    this.history.push({ end: now(), ms: runMs, bulkMs: (runMs * bulkCount) / jobs.length });
    this.pruneHistory(now() - this.shareWindowMs); // with realtime work only, bulkAllowed never runs to prune it
    const waits = jobs.map((j) => ({ priority: j.priority, ms: t0 - j.enqueuedAt }));
    jobs.forEach((j, i) => {
      if (error || !outputs) j.reject(error!);
      else {
        try {
          j.resolve(j.run(outputs[i]) as never);
        } catch (e) {
          j.reject(e as Error);
        }
      }
    });
    this.onBatch?.({
      kind,
      size: jobs.length,
      realtime: jobs.length - bulkCount,
      bulk: bulkCount,
      runMs,
      waits,
      audioSec: jobs.reduce((s, j) => s + j.keptSamples, 0) / this.model.manifest.sampleRate,
      error: error?.message,
    });
  }
}

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new CodecError('invalid_argument', `${name} must be a positive integer, got ${v}`);
  return v;
}
