import { CodecError } from './errors.js';
import type { ModelManifest } from './manifest.js';
import { ArrayQueue } from './sample-queue.js';
import type { TokenBlock } from './types.js';
import { WindowPlanner, type Window } from './window-plan.js';

/** One decoder run's worth of codes, and which output samples to keep. */
export interface DecodeWindow {
  tokens: TokenBlock;
  /** absolute index (model-rate samples) of the first kept sample */
  firstSample: number;
  /** offset of the first kept sample within the window's output */
  keepFrom: number;
  keepCount: number;
}

export interface StreamDecoderOptions {
  chunkFrames: number;
  numCodebooks: number;
  /** First chunks in shorter windows, as soon as they exist (streaming latency; see WindowPlanner). */
  eagerStart?: boolean;
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

/**
 * Per-stream decoder state: takes token frames as they arrive and yields
 * fixed-length code windows whose kept samples equal one-shot decoding.
 */
export class StreamDecoder {
  readonly numCodebooks: number;
  private readonly hop: number;
  private readonly rows: ArrayQueue<Int32Array>[];
  private readonly plan: WindowPlanner;
  private finished = false;

  constructor(private readonly manifest: ModelManifest, opts: StreamDecoderOptions) {
    this.numCodebooks = opts.numCodebooks;
    this.hop = manifest.hopLength;
    validateTokens(manifest, { numCodebooks: opts.numCodebooks, numFrames: 0, codes: new Int32Array(0) });
    this.rows = Array.from({ length: opts.numCodebooks }, () => new ArrayQueue(Int32Array));
    this.plan = new WindowPlanner(manifest.decoder.leftContext, opts.chunkFrames, manifest.decoder.lookahead, opts.eagerStart);
  }

  get framesIn(): number {
    return this.rows[0].length;
  }

  get framesOut(): number {
    return this.plan.emitted;
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
    return this.drain(true);
  }

  /** Windows for every frame whose lookahead has arrived (a partial chunk), exact; the stream goes on. */
  flush(): DecodeWindow[] {
    if (this.finished) return [];
    const out = this.drain(false);
    const w = this.plan.flushWindow(this.framesIn);
    if (w) out.push(this.toWindow(w));
    for (const r of this.rows) r.dropBefore(this.plan.keepFrom);
    return out;
  }

  private drain(final: boolean): DecodeWindow[] {
    const out: DecodeWindow[] = [];
    const available = this.framesIn;
    for (let w = this.plan.nextWindow(available, final); w; w = this.plan.nextWindow(available, final)) {
      out.push(this.toWindow(w));
    }
    for (const r of this.rows) r.dropBefore(this.plan.keepFrom);
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
