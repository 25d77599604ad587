import { CodecError } from './pure/errors.js';

/** Interleaved PCM sample encodings the codec layer reads. */
export type PcmEncoding = 'u8' | 's16le' | 's24le' | 's32le' | 'f32le' | 'f64le';

export const BYTES_PER_SAMPLE: Record<PcmEncoding, number> = { u8: 1, s16le: 2, s24le: 3, s32le: 4, f32le: 4, f64le: 8 };

export const MAX_CHANNELS = 32;

/**
 * Converts whole interleaved frames to mono float32 (channel average).
 * `bytes.length` must be a multiple of the frame size. Non-finite samples are
 * refused: a NaN would poison every frame the encoder's receptive field touches.
 */
export function toMonoFloat(bytes: Uint8Array, encoding: PcmEncoding, channels: number): Float32Array {
  const bps = BYTES_PER_SAMPLE[encoding];
  const frameBytes = bps * channels;
  if (bytes.length % frameBytes !== 0) {
    throw new CodecError('invalid_audio', `${bytes.length} bytes is not a whole number of ${channels}-channel ${encoding} frames`);
  }
  const frames = bytes.length / frameBytes;
  if (channels === 1 && LITTLE_ENDIAN && (encoding === 'f32le' || encoding === 's16le')) return monoFast(bytes, encoding, frames);
  const out = new Float32Array(frames);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = reader(encoding, dv);
  const scale = 1 / channels;
  for (let f = 0, p = 0; f < frames; f++) {
    let s = 0;
    for (let c = 0; c < channels; c++, p += bps) s += read(p);
    out[f] = s * scale;
  }
  if (encoding === 'f32le' || encoding === 'f64le') assertFinite(out);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Mono float32 and 16-bit WAV, the common cases, through typed-array views instead of a DataView
 * call per sample: 5-10x less CPU, which corpus preparation spends on the main thread.
 */
function monoFast(bytes: Uint8Array, encoding: 'f32le' | 's16le', frames: number): Float32Array {
  const out = new Float32Array(frames);
  if (encoding === 'f32le') {
    new Uint8Array(out.buffer).set(bytes);
    assertFinite(out);
    return out;
  }
  // a view needs 2-byte alignment; chunks of a stream may start anywhere
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  const s16 = new Int16Array(aligned.buffer, aligned.byteOffset, frames);
  for (let i = 0; i < frames; i++) out[i] = s16[i] / 32768;
  return out;
}

function reader(encoding: PcmEncoding, dv: DataView): (p: number) => number {
  switch (encoding) {
    case 'u8':
      return (p) => (dv.getUint8(p) - 128) / 128;
    case 's16le':
      return (p) => dv.getInt16(p, true) / 32768;
    case 's24le':
      return (p) => ((dv.getUint8(p) | (dv.getUint8(p + 1) << 8) | (dv.getInt8(p + 2) << 16)) / 8388608);
    case 's32le':
      return (p) => dv.getInt32(p, true) / 2147483648;
    case 'f32le':
      return (p) => dv.getFloat32(p, true);
    case 'f64le':
      return (p) => dv.getFloat64(p, true);
  }
}

export function assertFinite(pcm: Float32Array): void {
  const i = firstNonFinite(pcm);
  if (i >= 0) throw new CodecError('invalid_audio', `sample ${i} is ${pcm[i]}: audio must be finite`);
}

/** Index of the first NaN or infinite sample, or -1. */
export function firstNonFinite(pcm: Float32Array): number {
  for (let i = 0; i < pcm.length; i++) if (!Number.isFinite(pcm[i])) return i;
  return -1;
}

/** Float PCM to s16le bytes, clipped. */
export function floatToS16(pcm: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) {
    const v = Math.max(-1, Math.min(1, pcm[i]));
    out.writeInt16LE(Math.round(v < 0 ? v * 32768 : v * 32767), i * 2);
  }
  return out;
}

/**
 * Reassembles whole frames from arbitrarily split byte chunks (pipes, sockets).
 */
export class FrameAssembler {
  private rest: Buffer = Buffer.alloc(0);
  constructor(private readonly frameBytes: number) {}

  /** Returns the whole frames available so far. */
  push(chunk: Uint8Array): Buffer {
    const all = this.rest.length ? Buffer.concat([this.rest, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const whole = all.length - (all.length % this.frameBytes);
    this.rest = Buffer.from(all.subarray(whole));
    return all.subarray(0, whole);
  }

  /** Bytes of an incomplete trailing frame. */
  get pending(): number {
    return this.rest.length;
  }
}
