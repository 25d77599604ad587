/**
 * Per-stream engine state for real-time streaming (no transport knowledge):
 *
 *   EncodeSession: PCM at the client's rate -> StreamResampler -> StreamEncoder windows
 *                  -> shared ModelBatcher -> token blocks, delivered in order as soon as final.
 *   DecodeSession: token blocks -> StreamDecoder windows -> batcher -> model-rate PCM
 *                  -> StreamResampler to the client's rate -> PCM, in order.
 *
 * Both directions use the model's stateful streaming graphs when it has them (each chunk runs once,
 * with the stream's carried state); otherwise windows recompute their left context and start
 * eagerly (the first packet waits for one chunk, not a whole context window). Either way streamed tokens
 * equal offline `model.encode` up to onnxruntime rounding (docs/protocol.md §8); streamed PCM concatenates to
 * offline `model.decode` (at model rate) within float tolerance. Results arrive through
 * callbacks in submission order; `destroy()` drops queued batcher work and frees the resamplers.
 */
import { setMaxListeners } from 'node:events';
import type { ModelBatcher, Priority } from './batcher.js';
import { CodecError } from './pure/errors.js';
import { StreamDecoder, type DecodeWindow } from './pure/stream-decoder.js';
import { StreamEncoder, type EncodeWindow } from './stream-encoder.js';
import { StreamResampler } from './resample.js';
import type { TokenBlock } from './pure/types.js';

interface SessionBase {
  streamId: string;
  /** Frames per steady-state window (the latency/efficiency trade-off); encode sessions also take a fraction (see StreamEncoderOptions). */
  chunkFrames: number;
  priority?: Priority;
  /** Called once when the session fails (a batcher run failed); nothing is delivered afterwards. */
  onError: (e: CodecError) => void;
}

export interface EncodeSessionOptions extends SessionBase {
  /** Rate of the PCM the caller pushes. */
  inputRate: number;
  codebooks: number;
  /** Tokens for frames [firstFrame, firstFrame + block.numFrames); `waitedMs`: since the window was ready. */
  onTokens: (block: TokenBlock, firstFrame: number, waitedMs: number) => void;
}

export interface DecodeSessionOptions extends SessionBase {
  codebooks: number;
  /** Rate of the PCM delivered. */
  outputRate: number;
  /** PCM at outputRate, samples [firstSample, firstSample + pcm.length). */
  onPcm: (pcm: Float32Array, firstSample: number, waitedMs: number) => void;
}

/** Ordered delivery of batcher results, cancellation, failure. */
abstract class Session {
  protected readonly abort = new AbortController();
  private tail: Promise<void> = Promise.resolve();
  private failed = false;
  /** Windows submitted and not yet delivered. */
  inFlight = 0;
  protected finished = false;

  constructor(protected readonly batcher: ModelBatcher, protected readonly base: SessionBase) {
    setMaxListeners(0, this.abort.signal); // one listener per queued window
  }

  get destroyed(): boolean {
    return this.abort.signal.aborted;
  }

  /** Queues a batcher result for in-order delivery. */
  protected chain<T>(result: Promise<T>, deliver: (v: T, waitedMs: number) => void): void {
    const readyAt = performance.now();
    this.inFlight++;
    result.catch(() => undefined); // handled below, in order
    this.tail = this.tail.then(async () => {
      try {
        const v = await result;
        if (!this.failed && !this.destroyed) deliver(v, performance.now() - readyAt);
      } catch (e) {
        this.fail(e);
      } finally {
        this.inFlight--;
      }
    });
  }

  /** Resolves once everything submitted so far has been delivered. */
  protected drained(): Promise<void> {
    return this.tail;
  }

  protected fail(e: unknown): void {
    if (this.failed || this.destroyed) return;
    this.failed = true;
    const err = e instanceof CodecError ? e : new CodecError('model_broken', `model run failed: ${(e as Error).message}`, { cause: e });
    this.base.onError(err);
  }

  protected check(): void {
    if (this.destroyed) throw new CodecError('aborted', 'stream closed');
    if (this.finished) throw new CodecError('invalid_argument', 'stream already finished');
  }

  protected submitOpts() {
    return { priority: this.base.priority ?? 'realtime', streamId: this.base.streamId, signal: this.abort.signal } as const;
  }

  /** Drops queued work; late results are discarded. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.abort.abort();
    this.batcher.dropStream(this.base.streamId);
    this.release();
  }

  protected abstract release(): void;
}

export class EncodeSession extends Session {
  private readonly encoder: StreamEncoder;
  private samplesIn = 0;
  private framesOut = 0;

  private constructor(batcher: ModelBatcher, private readonly opts: EncodeSessionOptions, private resampler: StreamResampler) {
    super(batcher, opts);
    this.encoder = new StreamEncoder(batcher.manifest, { chunkFrames: opts.chunkFrames, eagerStart: true, stateful: true });
  }

  static async create(batcher: ModelBatcher, opts: EncodeSessionOptions): Promise<EncodeSession> {
    const m = batcher.manifest;
    if (!Number.isInteger(opts.codebooks) || opts.codebooks < 1 || opts.codebooks > m.numCodebooks) {
      throw new CodecError('model_mismatch', `codebooks must be 1..${m.numCodebooks} for model "${m.name}", got ${opts.codebooks}`);
    }
    if (!(opts.chunkFrames > 0)) throw new CodecError('invalid_argument', `chunkFrames must be positive`);
    return new EncodeSession(batcher, opts, await StreamResampler.create(opts.inputRate, m.sampleRate));
  }

  /** Frames per packet in steady state: chunkFrames as asked with the stateful encoder (may be fractional), else rounded. */
  get packetFrames(): number {
    return this.encoder.stateful ? this.opts.chunkFrames : Math.max(1, Math.round(this.opts.chunkFrames));
  }

  /** Client-rate samples received. */
  get samplesReceived(): number {
    return this.samplesIn;
  }

  get framesDelivered(): number {
    return this.framesOut;
  }

  /** Model-rate samples received but not yet turned into delivered tokens (buffer + queue). */
  get pendingSamples(): number {
    return this.encoder.samplesIn - this.framesOut * this.encoder.hop;
  }

  push(pcm: Float32Array): void {
    this.check();
    this.samplesIn += pcm.length;
    this.submit(this.encoder.push(this.resampler.push(pcm)));
  }

  /** Emits every whole frame received so far (partial chunk included); resolves once delivered. */
  flush(): Promise<void> {
    this.check();
    this.submit(this.encoder.flush());
    return this.drained();
  }

  /** Ends the stream (tail zero-padded to a whole frame, as offline); resolves once all is delivered. */
  finish(): Promise<void> {
    this.check();
    this.finished = true;
    const tail = this.resampler.finish();
    this.submit([...(tail.length ? this.encoder.push(tail) : []), ...this.encoder.finish()]);
    return this.drained();
  }

  private submit(windows: EncodeWindow[]): void {
    for (const w of windows) {
      const result = this.batcher.submitEncode(w, { ...this.submitOpts(), codebooks: this.opts.codebooks });
      this.chain(result, (block, waited) => {
        this.framesOut = w.firstFrame + block.numFrames;
        this.opts.onTokens(block, w.firstFrame, waited);
      });
    }
  }

  protected release(): void {
    this.resampler.destroy();
  }
}

export class DecodeSession extends Session {
  private readonly decoder: StreamDecoder;
  private samplesOut = 0;
  private modelSamplesOut = 0;

  private constructor(batcher: ModelBatcher, private readonly opts: DecodeSessionOptions, private resampler: StreamResampler) {
    super(batcher, opts);
    this.decoder = new StreamDecoder(batcher.manifest, { chunkFrames: opts.chunkFrames, numCodebooks: opts.codebooks, eagerStart: true, stateful: true });
  }

  static async create(batcher: ModelBatcher, opts: DecodeSessionOptions): Promise<DecodeSession> {
    if (!Number.isInteger(opts.chunkFrames) || opts.chunkFrames < 1) throw new CodecError('invalid_argument', `chunkFrames must be >= 1`);
    // StreamDecoder's constructor checks the codebook count against the model
    const resampler = await StreamResampler.create(batcher.manifest.sampleRate, opts.outputRate);
    try {
      return new DecodeSession(batcher, opts, resampler);
    } catch (e) {
      resampler.destroy();
      throw e;
    }
  }

  /** Frames accepted so far: the index the next packet must start at. */
  get framesReceived(): number {
    return this.decoder.framesIn;
  }

  /** Frames accepted but not yet delivered as audio. */
  get pendingFrames(): number {
    return this.decoder.framesIn - this.modelSamplesOut / this.batcher.manifest.hopLength;
  }

  /** Frames whose audio (all `hop` model samples) has been delivered. */
  get framesDecoded(): number {
    return Math.floor(this.modelSamplesOut / this.batcher.manifest.hopLength);
  }

  get samplesDelivered(): number {
    return this.samplesOut;
  }

  /** Validates and queues codes (throws CodecError and keeps its state when they are bad). */
  push(block: TokenBlock): void {
    this.check();
    this.submit(this.decoder.push(block));
  }

  flush(): Promise<void> {
    this.check();
    this.submit(this.decoder.flush());
    return this.drained();
  }

  async finish(): Promise<void> {
    this.check();
    this.finished = true;
    this.submit(this.decoder.finish());
    await this.drained();
    if (this.destroyed) return;
    const tail = this.resampler.finish();
    if (tail.length) this.deliver(tail, 0);
  }

  private submit(windows: DecodeWindow[]): void {
    for (const w of windows) {
      this.chain(this.batcher.submitDecode(w, this.submitOpts()), (pcm, waited) => {
        this.modelSamplesOut = w.firstSample + pcm.length;
        const out = this.resampler.push(pcm);
        if (out.length) this.deliver(out, waited);
      });
    }
  }

  private deliver(pcm: Float32Array, waited: number): void {
    const first = this.samplesOut;
    this.samplesOut += pcm.length;
    this.opts.onPcm(pcm, first, waited);
  }

  protected release(): void {
    this.resampler.destroy();
  }
}
