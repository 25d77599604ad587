import { Worker } from 'node:worker_threads';
import { CodecError, type CodecErrorCode } from '../codec/pure/errors.js';
import { readManifest, type ModelManifest } from '../codec/manifest.js';
import type { ProviderChoice } from '../codec/runtime.js';
import { sliceTokens } from '../codec/stream-encoder.js';
import type { TokenBlock } from '../codec/pure/types.js';
import type { EncodeReply, EncodeRequest, EncoderWorkerData, WorkerHello } from './encoder-worker.js';

export interface EncoderPoolOptions {
  modelDir: string;
  /** encoder sessions, one worker thread each */
  workers: number;
  /** intra-op threads per session */
  threads: number;
  provider: ProviderChoice;
  /** most windows stacked into one ONNX run */
  batch: number;
}

interface Pending {
  audio: Float32Array;
  keepFrom: number;
  keepCount: number;
  codebooks: number;
  resolve: (b: TokenBlock) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Pending[]>;
  busySince: number;
  /** its session has loaded */
  up: boolean;
}

/** Batches kept queued per session so it never waits for the main thread between runs. */
const IN_FLIGHT_PER_WORKER = 2;

/**
 * Dynamic batcher in front of N encoder sessions (worker threads). Windows of
 * many items queue here; a free session takes up to `batch` windows of the same
 * length (the oldest window decides the length) in one ONNX run.
 */
export class EncoderPool {
  private readonly queue: Pending[] = [];
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private broken: Error | undefined;
  /** windows and ONNX runs so far (for benchmarks and logs) */
  windows = 0;
  runs = 0;
  /** summed over sessions: milliseconds with at least one batch queued or running */
  busyMs = 0;
  /** Resolves when every session is loaded (set by open). */
  ready!: Promise<void>;
  /** Known once ready. */
  provider: 'cpu' | 'cuda' | undefined;
  fallbackReason: string | undefined;

  private constructor(readonly manifest: ModelManifest, readonly batch: number) {}

  /** Opens the pool and waits until every session is up. */
  static async start(opts: EncoderPoolOptions): Promise<EncoderPool> {
    const pool = EncoderPool.open(await readManifest(opts.modelDir), opts);
    try {
      await pool.ready;
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /**
   * Starts the sessions (side by side) and returns at once: windows queue until a session is up, so
   * inputs can be read and decoded while the model loads. `ready` rejects if a session fails to
   * load; queued and later windows are then rejected with a plain Error (not a CodecError), so no
   * input is recorded as failed for the model's fault.
   */
  static open(manifest: ModelManifest, opts: EncoderPoolOptions): EncoderPool {
    const pool = new EncoderPool(manifest, Math.max(1, opts.batch));
    const data: EncoderWorkerData = { modelDir: opts.modelDir, threads: opts.threads, provider: opts.provider };
    const hellos = Array.from({ length: opts.workers }, () => pool.spawn(data));
    pool.ready = Promise.all(hellos).then((hs) => {
      const bad = hs.find((h) => !h.ready);
      if (bad && !bad.ready) throw new CodecError((bad.error.code as CodecErrorCode) ?? 'model_broken', bad.error.message);
      const first = hs[0] as Extract<WorkerHello, { ready: true }>;
      pool.provider = first.provider;
      pool.fallbackReason = first.fallbackReason;
    });
    pool.ready.catch((e: Error) => pool.fail(new Error(`encoder sessions did not start: ${e.message}`)));
    return pool;
  }

  /** One worker thread; its slot takes windows once its session says hello. */
  private spawn(data: EncoderWorkerData): Promise<WorkerHello> {
    const worker = new Worker(new URL('./encoder-worker.js', import.meta.url), { workerData: data });
    const slot: Slot = { worker, inFlight: new Map(), busySince: 0, up: false };
    this.slots.push(slot);
    return new Promise<WorkerHello>((resolve) => {
      worker.once('message', (hello: WorkerHello) => {
        resolve(hello);
        if (!hello.ready) return;
        slot.up = true;
        worker.on('message', (r: EncodeReply) => this.onReply(slot, r));
        this.dispatch();
      });
      worker.on('error', (e) => {
        resolve({ ready: false, error: { message: e.message } });
        this.fail(new Error(`encoder thread died: ${e.message}`));
      });
      worker.on('exit', (code) => {
        resolve({ ready: false, error: { message: `encoder thread exited with code ${code}` } });
        if (!this.broken && code !== 0) this.fail(new Error(`encoder thread exited with code ${code}`));
      });
    });
  }

  /**
   * Encodes one window; resolves with frames [keepFrom, keepFrom+keepCount) of the first `codebooks`
   * codebooks. The pool takes `audio`: a window that owns its whole buffer may be transferred
   * (detached here), so the caller must not read it afterwards.
   */
  encode(audio: Float32Array, keepFrom: number, keepCount: number, codebooks: number): Promise<TokenBlock> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ audio, keepFrom, keepCount, codebooks, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      while (slot.up && this.queue.length && slot.inFlight.size < IN_FLIGHT_PER_WORKER) {
        const len = this.queue[0].audio.length;
        const take: Pending[] = [];
        for (let i = 0; i < this.queue.length && take.length < this.batch; ) {
          if (this.queue[i].audio.length === len) take.push(...this.queue.splice(i, 1));
          else i++;
        }
        const first = take[0].audio;
        const own = take.length === 1 && first.buffer instanceof ArrayBuffer && first.byteOffset === 0 && first.byteLength === first.buffer.byteLength;
        // a lone window that owns its buffer is handed over as it is (transferred, not copied)
        const audio = own ? first : new Float32Array(len * take.length);
        if (!own) take.forEach((p, i) => audio.set(p.audio, i * len));
        const id = this.nextId++;
        if (slot.inFlight.size === 0) slot.busySince = performance.now();
        slot.inFlight.set(id, take);
        this.windows += take.length;
        this.runs++;
        slot.worker.postMessage({ id, n: take.length, audio } satisfies EncodeRequest, [audio.buffer as ArrayBuffer]);
      }
    }
  }

  private onReply(slot: Slot, r: EncodeReply): void {
    const batch = slot.inFlight.get(r.id);
    if (!batch) return;
    slot.inFlight.delete(r.id);
    if (slot.inFlight.size === 0) this.busyMs += performance.now() - slot.busySince;
    if ('error' in r) {
      const e = new CodecError((r.error.code as CodecErrorCode) ?? 'model_broken', r.error.message);
      batch.forEach((p) => p.reject(e));
    } else {
      const per = r.numCodebooks * r.numFrames;
      batch.forEach((p, i) => {
        const block = { numCodebooks: r.numCodebooks, numFrames: r.numFrames, codes: r.codes.subarray(i * per, (i + 1) * per) };
        p.resolve(sliceTokens(block, p.keepFrom, p.keepCount, p.codebooks));
      });
    }
    this.dispatch();
  }

  private fail(e: Error): void {
    this.broken ??= e;
    for (const slot of this.slots) {
      for (const batch of slot.inFlight.values()) batch.forEach((p) => p.reject(e));
      slot.inFlight.clear();
    }
    this.queue.splice(0).forEach((p) => p.reject(e));
  }

  async close(): Promise<void> {
    this.broken ??= new Error('encoder pool closed');
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
