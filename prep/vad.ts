/**
 * Energy-based voice activity segmentation, streamed.
 *
 * Why energy and not a neural VAD: it needs no extra model, is deterministic to
 * the bit, costs nothing next to the codec, and the corpora this tool targets
 * (read speech, podcasts, audiobooks) are mostly clean; its job is to cut long
 * recordings at pauses into utterance-sized pieces, not to reject noise.
 *
 * Frames are one codec hop long, so segment bounds fall on token-frame bounds.
 * A frame is speech when its RMS level is above `thresholdDb` (dBFS). A
 * segment opens at the first speech frame (less `padSec`) and closes once
 * `minSilenceSec` of non-speech follows (plus `padSec`). A segment reaching
 * `maxSec` is cut at its quietest frame in its last third, and the rest goes on
 * as a new segment. Segments shorter than `minSec` are dropped and counted.
 */
export interface VadOptions {
  thresholdDb: number;
  minSec: number;
  maxSec: number;
  minSilenceSec: number;
  padSec: number;
}

export const DEFAULT_VAD: VadOptions = { thresholdDb: -40, minSec: 1, maxSec: 20, minSilenceSec: 0.3, padSec: 0.1 };

export interface Segment {
  /** first sample, relative to the start of the pushed signal */
  start: number;
  pcm: Float32Array;
}

export class VadSegmenter {
  private readonly frame: number;
  private readonly pad: number;
  private readonly silence: number;
  private readonly minFrames: number;
  private readonly maxFrames: number;
  /** frames kept: from frame index `base` on */
  private frames: Float32Array[] = [];
  private levels: number[] = [];
  private base = 0;
  private partial = new Float32Array(0);
  private segStart = -1; // -1: outside a segment
  private lastSpeech = -1;
  dropped = 0;
  droppedSamples = 0;

  constructor(sampleRate: number, frameSamples: number, private readonly opts: VadOptions) {
    if (!(opts.minSec >= 0 && opts.maxSec > opts.minSec)) throw new RangeError('VAD needs 0 <= min < max duration');
    const f = (s: number) => Math.round((s * sampleRate) / frameSamples);
    this.frame = frameSamples;
    this.pad = f(opts.padSec);
    this.silence = Math.max(1, f(opts.minSilenceSec));
    this.minFrames = f(opts.minSec);
    this.maxFrames = Math.max(2, f(opts.maxSec));
  }

  push(pcm: Float32Array): Segment[] {
    const all = new Float32Array(this.partial.length + pcm.length);
    all.set(this.partial);
    all.set(pcm, this.partial.length);
    const whole = Math.floor(all.length / this.frame) * this.frame;
    this.partial = all.slice(whole);
    const out: Segment[] = [];
    for (let o = 0; o < whole; o += this.frame) this.addFrame(all.slice(o, o + this.frame), out);
    return out;
  }

  finish(): Segment[] {
    const out: Segment[] = [];
    if (this.partial.length) this.addFrame(this.partial, out);
    this.partial = new Float32Array(0);
    if (this.segStart >= 0) this.emit(this.segStart, Math.min(this.end(), this.lastSpeech + 1 + this.pad), out);
    this.segStart = -1;
    return out;
  }

  private end(): number {
    return this.base + this.frames.length;
  }

  private addFrame(frame: Float32Array, out: Segment[]): void {
    const idx = this.end();
    let energy = 0;
    for (let i = 0; i < frame.length; i++) energy += frame[i] * frame[i];
    const db = 10 * Math.log10(energy / frame.length + 1e-12);
    this.frames.push(frame);
    this.levels.push(db);
    const speech = db > this.opts.thresholdDb;
    if (speech) {
      if (this.segStart < 0) this.segStart = Math.max(this.base, idx - this.pad);
      this.lastSpeech = idx;
    }
    if (this.segStart >= 0) {
      if (!speech && idx - this.lastSpeech >= this.silence + this.pad) {
        this.emit(this.segStart, this.lastSpeech + 1 + this.pad, out);
        this.segStart = -1;
      } else if (idx + 1 - this.segStart >= this.maxFrames) {
        const cut = this.quietest(this.segStart + Math.floor((this.maxFrames * 2) / 3), idx + 1);
        this.emit(this.segStart, cut, out);
        this.segStart = cut;
        if (this.lastSpeech < cut) this.segStart = -1; // only silence after the cut
      }
    }
    // outside a segment only the padding before a possible next onset is needed
    const keepFrom = this.segStart >= 0 ? this.segStart : idx + 1 - this.pad;
    if (keepFrom > this.base) {
      const n = Math.min(keepFrom - this.base, this.frames.length);
      this.frames.splice(0, n);
      this.levels.splice(0, n);
      this.base += n;
    }
  }

  private quietest(from: number, to: number): number {
    let best = to;
    let bestDb = Infinity;
    for (let i = from; i < to; i++) {
      const db = this.levels[i - this.base];
      if (db < bestDb) {
        bestDb = db;
        best = i;
      }
    }
    return Math.max(best, this.segStart + 1);
  }

  private emit(from: number, to: number, out: Segment[]): void {
    const parts = this.frames.slice(from - this.base, to - this.base);
    const n = parts.reduce((s, p) => s + p.length, 0);
    if (to - from < this.minFrames) {
      this.dropped++;
      this.droppedSamples += n;
      return;
    }
    const pcm = new Float32Array(n);
    let o = 0;
    for (const p of parts) {
      pcm.set(p, o);
      o += p.length;
    }
    out.push({ start: from * this.frame, pcm });
  }
}
