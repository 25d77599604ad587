import wavefile from 'wavefile';
import { CodecError } from './errors.js';
import { BYTES_PER_SAMPLE, FrameAssembler, MAX_CHANNELS, toMonoFloat, type PcmEncoding } from './pcm.js';
import { checkSampleRate } from './resample.js';

export interface WavInfo {
  sampleRate: number;
  channels: number;
  encoding: PcmEncoding;
  /** byte offset of the sample data */
  dataOffset: number;
  /** declared size of the sample data; streams written live often declare 0 or 0xFFFFFFFF */
  dataBytes: number;
}

/** The most header bytes read before the sample data must have started. */
const MAX_HEADER_BYTES = 1 << 20;

export function looksLikeWav(head: Uint8Array): boolean {
  const s = Buffer.from(head.subarray(0, 12)).toString('latin1');
  return s.startsWith('RIFF') && s.slice(8, 12) === 'WAVE';
}

/** Finds the data chunk by walking RIFF chunks; null if `head` does not reach it yet. */
function findDataChunk(head: Buffer): { offset: number; size: number } | null {
  let p = 12;
  while (p + 8 <= head.length) {
    const id = head.toString('latin1', p, p + 4);
    const size = head.readUInt32LE(p + 4);
    if (id === 'data') return { offset: p + 8, size };
    p += 8 + size + (size & 1);
  }
  return null;
}

/** Parses a WAV header (fmt via wavefile) from the first bytes of a file. */
export function parseWavHeader(head: Buffer): WavInfo | null {
  const data = findDataChunk(head);
  if (!data) {
    if (head.length >= MAX_HEADER_BYTES) throw new CodecError('invalid_audio', 'WAV: no data chunk in the first 1 MiB');
    return null;
  }
  const wav = new wavefile.WaveFile();
  try {
    wav.fromBuffer(head.subarray(0, data.offset), false);
  } catch (e) {
    throw new CodecError('invalid_audio', `WAV header: ${(e as Error).message}`);
  }
  const fmt = wav.fmt as { audioFormat: number; numChannels: number; sampleRate: number; bitsPerSample: number; blockAlign: number; subformat?: number[] };
  const channels = fmt.numChannels;
  if (!Number.isInteger(channels) || channels < 1 || channels > MAX_CHANNELS) {
    throw new CodecError('invalid_audio', `WAV: ${channels} channels (1..${MAX_CHANNELS} supported)`);
  }
  checkSampleRate(fmt.sampleRate);
  // 0xFFFE = WAVE_FORMAT_EXTENSIBLE: the real format is the first word of the subformat GUID
  const format = fmt.audioFormat === 0xfffe ? fmt.subformat?.[0] : fmt.audioFormat;
  const encoding = wavEncoding(format, fmt.bitsPerSample);
  if (fmt.blockAlign !== channels * (fmt.bitsPerSample / 8)) {
    throw new CodecError('invalid_audio', `WAV: block align ${fmt.blockAlign} does not match ${channels} x ${fmt.bitsPerSample} bits`);
  }
  return { sampleRate: fmt.sampleRate, channels, encoding, dataOffset: data.offset, dataBytes: data.size };
}

function wavEncoding(format: number | undefined, bits: number): PcmEncoding {
  if (format === 1) {
    const m: Record<number, PcmEncoding> = { 8: 'u8', 16: 's16le', 24: 's24le', 32: 's32le' };
    if (m[bits]) return m[bits];
  }
  if (format === 3) {
    if (bits === 32) return 'f32le';
    if (bits === 64) return 'f64le';
  }
  throw new CodecError('unsupported_media', `WAV: format ${format} with ${bits} bits per sample is not PCM or IEEE float`);
}

export interface DecodedStream {
  sampleRate: number;
  channels: number;
  /** From the declared data size; undefined for live streams that declare none. */
  durationSec?: number;
  pcm: AsyncGenerator<Float32Array>;
}

/**
 * Streams mono float PCM out of WAV bytes without holding the file:
 * header first, then frames as they arrive. A declared data size larger than
 * what arrives is treated as a live stream's placeholder, not an error.
 */
export async function decodeWavStream(bytes: AsyncIterator<Uint8Array>, first: Buffer): Promise<DecodedStream> {
  let head = first;
  let info = parseWavHeader(head);
  while (!info) {
    const r = await bytes.next();
    if (r.done) throw new CodecError('invalid_audio', 'WAV: file ends before the sample data');
    head = Buffer.concat([head, r.value]);
    info = parseWavHeader(head);
  }
  const { encoding, channels, dataOffset, dataBytes } = info;
  const declared = dataBytes === 0 || dataBytes === 0xffffffff ? Infinity : dataBytes;
  async function* frames(): AsyncGenerator<Float32Array> {
    const asm = new FrameAssembler(channels * BYTES_PER_SAMPLE[encoding]);
    let remaining = declared;
    let chunk: Uint8Array = head.subarray(dataOffset);
    for (;;) {
      const take = chunk.subarray(0, Math.min(chunk.length, remaining));
      remaining -= take.length;
      const whole = asm.push(take);
      if (whole.length) yield toMonoFloat(whole, encoding, channels);
      if (remaining <= 0) break; // trailing chunks (LIST, id3) are ignored
      const r = await bytes.next();
      if (r.done) break;
      chunk = r.value;
    }
  }
  const durationSec = Number.isFinite(declared) ? declared / (channels * BYTES_PER_SAMPLE[encoding]) / info.sampleRate : undefined;
  return { sampleRate: info.sampleRate, channels, durationSec, pcm: frames() };
}

/** A WAV file (mono or interleaved, float32 samples written as 16-bit PCM or 32-bit float). */
export function encodeWav(pcm: Float32Array, sampleRate: number, bits: '16' | '32f' = '16'): Buffer {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, sampleRate, '32f', pcm);
  if (bits === '16') wav.toBitDepth('16');
  return Buffer.from(wav.toBuffer());
}
