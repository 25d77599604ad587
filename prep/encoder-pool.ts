import { readManifest, type ModelManifest } from '../codec/manifest.js';
import { CodecModel } from '../codec/model.js';
import type { ProviderChoice } from '../codec/runtime.js';
import { sliceTokens } from '../codec/stream-encoder.js';
import type { TokenBlock } from '../codec/pure/types.js';

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
  /** an encoder-only model whose session runs on a worker thread of its own; set once loaded */
  model: CodecModel | undefined;
  inFlight: number;
  busySince: number;
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
    const runtime = { intraOpThreads: opts.threads, interOpThreads: 1, provider: opts.provider, log: () => {} };
    const loads = Array.from({ length: opts.workers }, () => {
      const slot: Slot = { model: undefined, inFlight: 0, busySince: 0 };
      pool.slots.push(slot);
      return CodecModel.load(opts.modelDir, runtime, 'encoder').then((model) => {
        slot.model = model;
        if (pool.broken) void model.release(); // closed or failed while loading
        else pool.dispatch();
        return model;
      });
    });
    pool.ready = Promise.all(loads).then((models) => {
      pool.provider = models[0].provider;
      pool.fallbackReason = models[0].fallbackReason;
    });
    pool.ready.catch((e: Error) => pool.fail(new Error(`encoder sessions did not start: ${e.message}`)));
    return pool;
  }

  /**
   * Encodes one window; resolves with frames [keepFrom, keepFrom+keepCount) of the first `codebooks`
   * codebooks.
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
      while (slot.model && !this.broken && this.queue.length && slot.inFlight < IN_FLIGHT_PER_WORKER) {
        const len = this.queue[0].audio.length;
        const take: Pending[] = [];
        for (let i = 0; i < this.queue.length && take.length < this.batch; ) {
          if (this.queue[i].audio.length === len) take.push(...this.queue.splice(i, 1));
          else i++;
        }
        if (slot.inFlight++ === 0) slot.busySince = performance.now();
        this.windows += take.length;
        this.runs++;
        slot.model.encodeBatch(take.map((p) => p.audio)).then(
          (blocks) => take.forEach((p, i) => p.resolve(sliceTokens(blocks[i], p.keepFrom, p.keepCount, p.codebooks))),
          (e: Error) => take.forEach((p) => p.reject(e)),
        ).finally(() => {
          if (--slot.inFlight === 0) this.busyMs += performance.now() - slot.busySince;
          this.dispatch();
        });
      }
    }
  }

  private fail(e: Error): void {
    this.broken ??= e;
    this.queue.splice(0).forEach((p) => p.reject(e));
  }

  /** Ends the sessions; windows in flight are rejected. */
  async close(): Promise<void> {
    this.fail(new Error('encoder pool closed'));
    await Promise.all(this.slots.map((s) => s.model?.release()));
  }
}
