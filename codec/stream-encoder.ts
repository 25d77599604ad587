import { CodecError } from './pure/errors.js';
import type { ModelManifest } from './manifest.js';
import { SampleQueue } from './pure/sample-queue.js';
import type { StreamCarry, TokenBlock } from './pure/types.js';
import { WindowPlanner, type Window } from './pure/window-plan.js';

/** One encoder run's worth of audio, and which of its output frames to keep. */
export interface EncodeWindow {
  audio: Float32Array;
  /** absolute index of the first kept frame */
  firstFrame: number;
  /** index of the first kept frame within the window's output */
  keepFrom: number;
  keepCount: number;
  /**
   * Set on chunks for the stateful streaming encoder: the stream's state, read by the run and
   * replaced with the next state after it. Chunks sharing a carry must run one at a time, in order.
   */
  carry?: StreamCarry;
}

export interface StreamEncoderOptions {
  /**
   * Frames emitted per window in steady state. The stateful encoder also takes a fraction (20 ms at
   * 75 frames/s: 1.5): chunk i then ends at frame floor(i · chunkFrames), so chunks hold 1 or 2 frames
   * and each leaves as soon as the audio up to its end is in, instead of every 26.7 ms for a rounded
   * 2. Windowed encoding rounds it.
   */
  chunkFrames: number;
  /** First chunks in shorter windows, as soon as they exist (streaming latency; see WindowPlanner). */
  eagerStart?: boolean;
  /** Offline: the last window holds only the context it needs (see WindowPlanner); it is shorter than the others. */
  tightFinal?: boolean;
  /**
   * Use the model's stateful streaming encoder (manifest `encoder.streaming`): each chunk is run
   * alone with the carried state, so no context is recomputed. Ignored when the model has none or
   * when chunkFrames is not a whole number of its chunk multiple.
   */
  stateful?: boolean;
}

/** Encoder context in whole frames, from the manifest. */
export function encoderContextFrames(m: ModelManifest): { left: number; right: number } {
  return {
    left: Math.ceil(m.encoder.leftContext / m.hopLength),
    right: Math.ceil(m.encoder.lookahead / m.hopLength),
  };
}

/**
 * Per-stream encoder state: takes model-rate mono PCM as it arrives and yields
 * fixed-length windows whose kept frames equal one-shot encoding (see window-plan).
 * It runs nothing itself, so a batcher can stack windows of many streams.
 */
export class StreamEncoder {
  readonly hop: number;
  /** Samples in a steady-state window (for the stateful encoder: one chunk). */
  readonly windowSamples: number;
  private readonly samples = new SampleQueue();
  private readonly plan: WindowPlanner;
  /** Stateful mode: the carried state and the chunk granularity in samples. */
  private readonly carry?: StreamCarry;
  private readonly chunkMultiple: number = 0;
  /** Stateful mode: samples already handed out in chunks. */
  private consumed = 0;
  /** Stateful mode: frames per chunk (may be fractional) and the index of the next chunk to cut. */
  private readonly cadence: number = 0;
  private nextChunk = 1;
  /** Stateful mode: where chunk 0 started; a flush restarts whole-frame chunks where it cut. */
  private anchor = 0;
  private finished = false;

  constructor(manifest: ModelManifest, opts: StreamEncoderOptions) {
    const { left, right } = encoderContextFrames(manifest);
    if (!(opts.chunkFrames > 0)) throw new CodecError('invalid_argument', `chunkFrames must be positive, got ${opts.chunkFrames}`);
    // ms -> frames arithmetic leaves float dust (0.08 s · 75 = 6.000000000000001): that is a whole chunk
    const chunkFrames = Math.abs(opts.chunkFrames - Math.round(opts.chunkFrames)) < 1e-6 ? Math.round(opts.chunkFrames) : opts.chunkFrames;
    const whole = Number.isInteger(chunkFrames);
    this.hop = manifest.hopLength;
    this.plan = new WindowPlanner(left, Math.max(1, Math.round(chunkFrames)), right, { eagerStart: opts.eagerStart, tightFinal: opts.tightFinal });
    this.windowSamples = this.plan.length * this.hop;
    const streaming = manifest.encoder.streaming;
    // a fractional chunk cuts at frame boundaries, which must be boundaries the streaming graph accepts
    const fits = whole ? (chunkFrames * this.hop) % (streaming?.chunkMultiple ?? 1) === 0 : this.hop % (streaming?.chunkMultiple ?? 1) === 0;
    if (opts.stateful && streaming && fits) {
      this.carry = { value: new Float32Array(streaming.stateSize) };
      this.chunkMultiple = streaming.chunkMultiple;
      this.cadence = chunkFrames;
      this.windowSamples = Math.ceil(chunkFrames) * this.hop;
    }
  }

  /** True when windows are chunks for the stateful streaming encoder. */
  get stateful(): boolean {
    return this.carry !== undefined;
  }

  /** Samples received so far (model rate). */
  get samplesIn(): number {
    return this.samples.length;
  }

  /** Frames handed out in windows so far. */
  get framesOut(): number {
    return this.carry ? Math.ceil(this.consumed / this.hop) : this.plan.emitted;
  }

  /** Samples held in memory. */
  get bufferedSamples(): number {
    return this.samples.held;
  }

  push(pcm: Float32Array): EncodeWindow[] {
    if (this.finished) throw new CodecError('invalid_argument', 'stream already finished');
    this.samples.push(pcm);
    return this.drain(false);
  }

  /** Ends the stream: the tail is zero-padded to a whole frame, as one-shot encoding does. */
  finish(): EncodeWindow[] {
    if (this.finished) return [];
    this.finished = true;
    return this.drain(true);
  }

  /**
   * Windows for every whole frame received so far whose lookahead has arrived (a partial
   * chunk): kept frames still equal one-shot encoding; the stream goes on afterwards.
   */
  flush(): EncodeWindow[] {
    if (this.finished) return [];
    if (this.carry) {
      const out = this.chunksUpTo(this.samples.length - ((this.samples.length - this.consumed) % this.chunkMultiple));
      if (Number.isInteger(this.cadence)) [this.anchor, this.nextChunk] = [this.consumed, 1];
      return out;
    }
    const out = this.drain(false);
    const w = this.plan.flushWindow(Math.floor(this.samples.length / this.hop));
    if (w) out.push(this.toWindow(w));
    this.samples.dropBefore(this.plan.keepFrom * this.hop);
    return out;
  }

  private drain(final: boolean): EncodeWindow[] {
    if (this.carry) return this.drainChunks(final);
    const available = final ? Math.ceil(this.samples.length / this.hop) : Math.floor(this.samples.length / this.hop);
    const out: EncodeWindow[] = [];
    for (let w = this.plan.nextWindow(available, final); w; w = this.plan.nextWindow(available, final)) {
      out.push(this.toWindow(w));
    }
    this.samples.dropBefore(this.plan.keepFrom * this.hop);
    return out;
  }

  /**
   * Stateful mode: every whole chunk received; with `final`, then the tail, zero-padded to a whole
   * chunk multiple (its kept frames: the tail padded to whole frames, as one-shot encoding does).
   */
  private drainChunks(final: boolean): EncodeWindow[] {
    const out: EncodeWindow[] = [];
    for (let end = this.chunkEnd(this.nextChunk); end <= this.samples.length; end = this.chunkEnd(++this.nextChunk)) {
      if (end > this.consumed) out.push(...this.chunksUpTo(end)); // a flush may have cut past this chunk's end already
    }
    const tail = this.samples.length - this.consumed;
    if (final && tail > 0) {
      const audio = this.samples.read(this.consumed, this.consumed + Math.ceil(tail / this.chunkMultiple) * this.chunkMultiple);
      out.push({ audio, firstFrame: this.consumed / this.hop, keepFrom: 0, keepCount: Math.ceil(tail / this.hop), carry: this.carry });
      this.consumed = this.samples.length;
      this.samples.dropBefore(this.consumed);
    }
    return out;
  }

  /** Stateful mode: the sample where chunk i ends (frame floor(i · chunkFrames), on the graph's chunk grid). */
  private chunkEnd(i: number): number {
    const frames = Math.floor(i * this.cadence + 1e-9);
    return this.anchor + Math.floor((frames * this.hop) / this.chunkMultiple) * this.chunkMultiple;
  }

  /** Stateful mode: [consumed, end) as chunks of at most windowSamples (end - consumed: a whole chunk multiple). */
  private chunksUpTo(end: number): EncodeWindow[] {
    const out: EncodeWindow[] = [];
    while (this.consumed < end) {
      const n = Math.min(this.windowSamples, end - this.consumed);
      const audio = this.samples.read(this.consumed, this.consumed + n);
      out.push({ audio, firstFrame: this.consumed / this.hop, keepFrom: 0, keepCount: n / this.hop, carry: this.carry });
      this.consumed += n;
    }
    this.samples.dropBefore(this.consumed);
    return out;
  }

  private toWindow(w: Window): EncodeWindow {
    return {
      audio: this.samples.read(w.start * this.hop, w.end * this.hop),
      firstFrame: w.emitStart,
      keepFrom: w.emitStart - w.start,
      keepCount: w.emitEnd - w.emitStart,
    };
  }
}

/** Frames [from, from+count) of the first `codebooks` codebooks of a block. */
export function sliceTokens(block: TokenBlock, from: number, count: number, codebooks = block.numCodebooks): TokenBlock {
  const codes = new Int32Array(codebooks * count);
  for (let k = 0; k < codebooks; k++) {
    const src = k * block.numFrames + from;
    codes.set(block.codes.subarray(src, src + count), k * count);
  }
  return { numCodebooks: codebooks, numFrames: count, codes };
}

/** Joins blocks with the same codebook count along time. */
export function concatTokens(blocks: TokenBlock[], numCodebooks?: number): TokenBlock {
  const k = numCodebooks ?? blocks[0]?.numCodebooks ?? 0;
  const frames = blocks.reduce((s, b) => s + b.numFrames, 0);
  const codes = new Int32Array(k * frames);
  let t = 0;
  for (const b of blocks) {
    if (b.numCodebooks !== k) throw new CodecError('invalid_tokens', `codebook count ${b.numCodebooks} != ${k}`);
    for (let c = 0; c < k; c++) codes.set(b.codes.subarray(c * b.numFrames, (c + 1) * b.numFrames), c * frames + t);
    t += b.numFrames;
  }
  return { numCodebooks: k, numFrames: frames, codes };
}
