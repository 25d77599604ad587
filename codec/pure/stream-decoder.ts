import { CodecError } from './errors.js';
import type { ModelManifest } from './manifest-types.js';
import { ArrayQueue } from './sample-queue.js';
import type { StreamCarry, TokenBlock } from './types.js';
import { WindowPlanner, type Window } from './window-plan.js';

/** One decoder run's worth of codes, and which output samples to keep. */
export interface DecodeWindow {
  tokens: TokenBlock;
  /** absolute index (model-rate samples) of the first kept sample */
  firstSample: number;
  /** offset of the first kept sample within the window's output */
  keepFrom: number;
  keepCount: number;
  /**
   * Set on chunks for the stateful streaming decoder: the stream's state, read by the run and replaced
   * (with `final`) after it. Chunks sharing a carry must run one at a time, in order.
   */
  carry?: StreamCarry;
  /** The stream's last samples: no run, `carry.final` once every earlier chunk has run. */
  tail?: boolean;
}

export interface StreamDecoderOptions {
  chunkFrames: number;
  numCodebooks: number;
  /** First chunks in shorter windows, as soon as they exist (streaming latency; see WindowPlanner). */
  eagerStart?: boolean;
  /** Offline: the last window holds only the context it needs (see WindowPlanner); it is shorter than the others. */
  tightFinal?: boolean;
  /**
   * Use the model's stateful streaming decoder (manifest `decoder.streaming`): each chunk runs once,
   * with the carried state. Ignored when the model has none or chunkFrames is not a whole number of
   * its chunk multiple.
   */
  stateful?: boolean;
}

/** Checks codes against the model before they reach a graph. */
export function validateTokens(manifest: ModelManifest, block: TokenBlock): void {
  const { numCodebooks: k, numFrames: t, codes } = block;
  if (!Number.isInteger(k) || k < 1 || k > manifest.numCodebooks) {
    throw new CodecError('model_mismatch', `codebook count ${k} outside 1..${manifest.numCodebooks} of model "${manifest.name}"`);
  }
  if (codes.length !== k * t) throw new CodecError('invalid_tokens', `expected ${k * t} codes, got ${codes.length}`);
  const size = manifest.codebookSize;
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c < 0 || c >= size) {
      throw new CodecError('invalid_tokens', `code ${c} at codebook ${Math.floor(i / t)}, frame ${i % t} outside [0, ${size})`);
    }
  }
}

/** A tail window's samples: its stream's `final` output, once every earlier chunk has run. */
export function tailAudio(w: DecodeWindow): Float32Array {
  const final = w.carry?.final;
  if (!w.tail || !final) throw new CodecError('invalid_argument', 'tail window before any chunk of its stream ran');
  return final.subarray(w.keepFrom, w.keepFrom + w.keepCount);
}

/**
 * Per-stream decoder state: takes token frames as they arrive and yields
 * fixed-length code windows whose kept samples equal one-shot decoding.
 */
export class StreamDecoder {
  readonly numCodebooks: number;
  private readonly hop: number;
  private readonly rows: ArrayQueue<Int32Array>[];
  private readonly plan: WindowPlanner;
  /** Stateful mode: the carried state, the chunk granularity (frames), frames handed out so far. */
  private readonly carry?: StreamCarry;
  private readonly chunkMultiple: number = 1;
  private consumed = 0;
  private finished = false;

  constructor(private readonly manifest: ModelManifest, private readonly opts: StreamDecoderOptions) {
    this.numCodebooks = opts.numCodebooks;
    this.hop = manifest.hopLength;
    validateTokens(manifest, { numCodebooks: opts.numCodebooks, numFrames: 0, codes: new Int32Array(0) });
    this.rows = Array.from({ length: opts.numCodebooks }, () => new ArrayQueue(Int32Array));
    this.plan = new WindowPlanner(manifest.decoder.leftContext, opts.chunkFrames, manifest.decoder.lookahead, { eagerStart: opts.eagerStart, tightFinal: opts.tightFinal });
    const streaming = manifest.decoder.streaming;
    if (opts.stateful && streaming && opts.chunkFrames % streaming.chunkMultiple === 0) {
      this.carry = { value: new Float32Array(streaming.stateSize) };
      this.chunkMultiple = streaming.chunkMultiple;
    }
  }

  /** True when windows are chunks for the stateful streaming decoder. */
  get stateful(): boolean {
    return this.carry !== undefined;
  }

  get framesIn(): number {
    return this.rows[0].length;
  }


  push(block: TokenBlock): DecodeWindow[] {
    if (this.finished) throw new CodecError('invalid_argument', 'stream already finished');
    if (block.numCodebooks !== this.numCodebooks) {
      throw new CodecError('model_mismatch', `stream has ${this.numCodebooks} codebooks, packet has ${block.numCodebooks}`);
    }
    validateTokens(this.manifest, block);
    for (let k = 0; k < this.numCodebooks; k++) {
      this.rows[k].push(block.codes.subarray(k * block.numFrames, (k + 1) * block.numFrames));
    }
    return this.drain(false);
  }

  finish(): DecodeWindow[] {
    if (this.finished) return [];
    this.finished = true;
    if (!this.carry) return this.drain(true);
    if (this.framesIn % this.chunkMultiple !== 0) {
      throw new CodecError('invalid_tokens', `the stream's ${this.framesIn} frames are not a whole number of ${this.chunkMultiple}-frame chunks`);
    }
    const out = this.chunks(this.framesIn);
    if (this.framesIn > 0) {
      const delay = this.manifest.decoder.streaming!.delaySamples;
      const empty = { numCodebooks: this.numCodebooks, numFrames: 0, codes: new Int32Array(0) };
      out.push({ tokens: empty, firstSample: this.framesIn * this.hop - delay, keepFrom: 0, keepCount: delay, carry: this.carry, tail: true });
    }
    return out;
  }

  /** Windows for every frame whose lookahead has arrived (a partial chunk), exact; the stream goes on. */
  flush(): DecodeWindow[] {
    if (this.finished) return [];
    if (this.carry) return this.chunks(this.framesIn - ((this.framesIn - this.consumed) % this.chunkMultiple));
    const out = this.drain(false);
    const w = this.plan.flushWindow(this.framesIn);
    if (w) out.push(this.toWindow(w));
    for (const r of this.rows) r.dropBefore(this.plan.keepFrom);
    return out;
  }

  private drain(final: boolean): DecodeWindow[] {
    if (this.carry) return this.chunks(this.consumed + Math.floor((this.framesIn - this.consumed) / this.opts.chunkFrames) * this.opts.chunkFrames);
    const out: DecodeWindow[] = [];
    const available = this.framesIn;
    for (let w = this.plan.nextWindow(available, final); w; w = this.plan.nextWindow(available, final)) {
      out.push(this.toWindow(w));
    }
    for (const r of this.rows) r.dropBefore(this.plan.keepFrom);
    return out;
  }

  /**
   * Stateful mode: frames [consumed, end) as chunks of at most chunkFrames. Chunk [a, a+n) completes
   * stream samples [a·hop − delay, (a+n)·hop − delay); the first `delay` samples precede the stream.
   */
  private chunks(end: number): DecodeWindow[] {
    const out: DecodeWindow[] = [];
    const delay = this.manifest.decoder.streaming!.delaySamples;
    while (this.consumed < end) {
      const a = this.consumed;
      const n = Math.min(this.opts.chunkFrames, end - a);
      const codes = new Int32Array(this.numCodebooks * n);
      this.rows.forEach((r, k) => r.readInto(a, a + n, codes, k * n));
      const keepFrom = Math.max(0, Math.min(n * this.hop, delay - a * this.hop));
      out.push({
        tokens: { numCodebooks: this.numCodebooks, numFrames: n, codes },
        firstSample: a * this.hop - delay + keepFrom,
        keepFrom,
        keepCount: n * this.hop - keepFrom,
        carry: this.carry,
      });
      this.consumed += n;
    }
    for (const r of this.rows) r.dropBefore(this.consumed);
    return out;
  }

  private toWindow(w: Window): DecodeWindow {
    const n = w.end - w.start;
    const codes = new Int32Array(this.numCodebooks * n);
    this.rows.forEach((r, k) => r.readInto(w.start, w.end, codes, k * n));
    return {
      tokens: { numCodebooks: this.numCodebooks, numFrames: n, codes },
      firstSample: w.emitStart * this.hop,
      keepFrom: (w.emitStart - w.start) * this.hop,
      keepCount: (w.emitEnd - w.emitStart) * this.hop,
    };
  }
}
