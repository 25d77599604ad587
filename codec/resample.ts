import { createRequire } from 'node:module';
import { CodecError } from './pure/errors.js';

// required, not imported: spares every encoder thread the ESM loader's scan of this CommonJS package
const { create, ConverterType } = createRequire(import.meta.url)('@alexanderolsen/libsamplerate-js') as typeof import('@alexanderolsen/libsamplerate-js');

export const MIN_SAMPLE_RATE = 4000;
export const MAX_SAMPLE_RATE = 384000;

export function checkSampleRate(rate: number): void {
  if (!Number.isInteger(rate) || rate < MIN_SAMPLE_RATE || rate > MAX_SAMPLE_RATE) {
    throw new CodecError('invalid_audio', `sample rate ${rate} outside ${MIN_SAMPLE_RATE}..${MAX_SAMPLE_RATE} Hz`);
  }
}

/** libsamplerate-js refuses rates above this in `create`; the converter itself only uses the ratio. */
const LIBRARY_MAX_RATE = 192000;

/**
 * A converter for any rates in our range. Above 192 kHz it is created at rates the library's
 * check accepts, then set to the real ones through its public setters (which re-initialise the
 * converter without that check) and its ratio (used to size output chunks) corrected: the
 * converter works from the ratio alone, so the result is exactly the one for the real rates.
 */
async function createConverter(inRate: number, outRate: number): Promise<Awaited<ReturnType<typeof create>>> {
  const opts = { converterType: ConverterType.SRC_SINC_MEDIUM_QUALITY };
  if (inRate <= LIBRARY_MAX_RATE && outRate <= LIBRARY_MAX_RATE) return create(1, inRate, outRate, opts);
  const src = await create(1, Math.min(inRate, LIBRARY_MAX_RATE), Math.min(outRate, LIBRARY_MAX_RATE), opts);
  src.inputSampleRate = inRate;
  src.outputSampleRate = outRate;
  src.ratio = outRate / inRate;
  return src;
}

/**
 * Streaming band-limited resampler (libsamplerate, sinc "medium": 97 dB SNR,
 * ~4x faster than "best", which would cost ~30 ms per second of 44.1 kHz audio).
 * Chunked output concatenates to exactly what one call over the whole signal gives;
 * finish() flushes the filter delay so the total is round(inputLength * out / in).
 */
export class StreamResampler {
  private src: Awaited<ReturnType<typeof create>> | undefined;
  private samplesIn = 0;
  private samplesOut = 0;

  private constructor(readonly inRate: number, readonly outRate: number) {}

  static async create(inRate: number, outRate: number): Promise<StreamResampler> {
    checkSampleRate(inRate);
    checkSampleRate(outRate);
    const r = new StreamResampler(inRate, outRate);
    if (inRate !== outRate) r.src = await createConverter(inRate, outRate);
    return r;
  }

  push(pcm: Float32Array): Float32Array {
    this.samplesIn += pcm.length;
    const out = this.src ? this.src.full(pcm) : pcm;
    this.samplesOut += out.length;
    return out;
  }

  /** Flushes the filter tail; the stream ends with exactly the expected sample count. */
  finish(): Float32Array {
    const expected = Math.round((this.samplesIn * this.outRate) / this.inRate);
    const parts: Float32Array[] = [];
    if (this.src) {
      const zeros = new Float32Array(Math.max(256, Math.ceil(this.inRate / 100)));
      for (let guard = 0; this.samplesOut < expected && guard < 1000; guard++) {
        const out = this.src.full(zeros);
        parts.push(out);
        this.samplesOut += out.length;
      }
      this.src.destroy();
      this.src = undefined;
    }
    const tail = concat(parts);
    const keep = tail.length - Math.max(0, this.samplesOut - expected);
    this.samplesOut = expected;
    return tail.subarray(0, Math.max(0, keep));
  }

  /** Frees the WASM state without flushing (stream abandoned). */
  destroy(): void {
    this.src?.destroy();
    this.src = undefined;
  }
}

export function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export async function resampleAll(pcm: Float32Array, inRate: number, outRate: number): Promise<Float32Array> {
  const r = await StreamResampler.create(inRate, outRate);
  return concat([r.push(pcm), r.finish()]);
}
