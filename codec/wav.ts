import wavefile from 'wavefile';
import { CodecError } from './pure/errors.js';
import { BYTES_PER_SAMPLE, FrameAssembler, MAX_CHANNELS, toMonoFloat, type PcmEncoding } from './pcm.js';
import { checkSampleRate } from './resample.js';

export interface WavInfo {
  sampleRate: number;
  channels: number;
  /** the format tag (1 PCM, 3 float, 6 A-law, 7 mu-law, 0x11 IMA ADPCM, ...; the subformat's for WAVE_FORMAT_EXTENSIBLE) */
  format: number;
  bitsPerSample: number;
  /** PCM or float samples read in-process; null for the compressed encodings left to ffmpeg */
  encoding: PcmEncoding | null;
  /** RIFX: every header field and sample is big-endian */
  bigEndian: boolean;
  /** byte offset of the sample data */
  dataOffset: number;
  /** declared size of the sample data; streams written live often declare 0 or 0xFFFFFFFF */
  dataBytes: number;
}

/** The most header bytes read before the sample data must have started. */
const MAX_HEADER_BYTES = 1 << 20;

/** RIFF (little-endian) or RIFX (big-endian) WAVE. */
export function looksLikeWav(head: Uint8Array): boolean {
  const s = Buffer.from(head.subarray(0, 12)).toString('latin1');
  return (s.startsWith('RIFF') || s.startsWith('RIFX')) && s.slice(8, 12) === 'WAVE';
}

/**
 * Parses a WAV header from the first bytes of a file: walks the chunks (any number of LIST, fact,
 * bext, ... in any order) to the fmt and data chunks. Null if `head` does not reach the data yet.
 */
export function parseWavHeader(head: Buffer): WavInfo | null {
  const bigEndian = head.toString('latin1', 0, 4) === 'RIFX';
  const u32 = (b: Buffer, o: number) => (bigEndian ? b.readUInt32BE(o) : b.readUInt32LE(o));
  let fmt: Buffer | null = null;
  for (let p = 12; p + 8 <= head.length; ) {
    const id = head.toString('latin1', p, p + 4);
    const size = u32(head, p + 4);
    if (id === 'data') {
      if (!fmt) throw new CodecError('invalid_audio', 'WAV: no fmt chunk before the sample data');
      return describeFormat(fmt, bigEndian, p + 8, size);
    }
    if (id === 'fmt ') {
      if (p + 8 + size > head.length) break; // the rest of it has not arrived
      fmt = head.subarray(p + 8, p + 8 + size);
    }
    p += 8 + size + (size & 1);
  }
  if (head.length >= MAX_HEADER_BYTES) throw new CodecError('invalid_audio', 'WAV: no data chunk in the first 1 MiB');
  return null;
}

function describeFormat(fmt: Buffer, bigEndian: boolean, dataOffset: number, dataBytes: number): WavInfo {
  if (fmt.length < 16) throw new CodecError('invalid_audio', `WAV: fmt chunk of ${fmt.length} bytes (at least 16)`);
  const u16 = (o: number) => (bigEndian ? fmt.readUInt16BE(o) : fmt.readUInt16LE(o));
  const u32 = (o: number) => (bigEndian ? fmt.readUInt32BE(o) : fmt.readUInt32LE(o));
  const tag = u16(0);
  const channels = u16(2);
  const sampleRate = u32(4);
  const blockAlign = u16(12);
  const bitsPerSample = u16(14);
  if (channels < 1 || channels > MAX_CHANNELS) throw new CodecError('invalid_audio', `WAV: ${channels} channels (1..${MAX_CHANNELS} supported)`);
  checkSampleRate(sampleRate);
  // 0xFFFE = WAVE_FORMAT_EXTENSIBLE: the real format is the first word of the subformat GUID
  if (tag === 0xfffe && fmt.length < 40) throw new CodecError('invalid_audio', `WAV: extensible fmt chunk of ${fmt.length} bytes (40 needed)`);
  const format = tag === 0xfffe ? u32(24) & 0xffff : tag;
  const encoding = pcmEncoding(format, bitsPerSample);
  if (encoding === null) {
    // ffmpeg reads RIFX headers but decodes their samples as little-endian: noise, so never hand it one
    if (bigEndian) throw new CodecError('unsupported_media', `big-endian WAV (RIFX) with format ${format} and ${bitsPerSample} bits per sample: only PCM and IEEE float are read`);
    return { sampleRate, channels, format, bitsPerSample, encoding, bigEndian, dataOffset, dataBytes };
  }
  if (blockAlign !== channels * (bitsPerSample / 8)) {
    throw new CodecError('invalid_audio', `WAV: block align ${blockAlign} does not match ${channels} x ${bitsPerSample} bits`);
  }
  return { sampleRate, channels, format, bitsPerSample, encoding, bigEndian, dataOffset, dataBytes };
}

/** The in-process sample encoding of PCM and float WAV; null for everything else (ffmpeg's job). */
function pcmEncoding(format: number, bits: number): PcmEncoding | null {
  if (format === 1) return ({ 8: 'u8', 16: 's16le', 24: 's24le', 32: 's32le' } as Record<number, PcmEncoding>)[bits] ?? null;
  if (format === 3) return ({ 32: 'f32le', 64: 'f64le' } as Record<number, PcmEncoding>)[bits] ?? null;
  return null;
}

export interface DecodedStream {
  sampleRate: number;
  channels: number;
  /** From the declared data size; undefined for live streams that declare none. */
  durationSec?: number;
  pcm: AsyncGenerator<Float32Array>;
}

/** Reads until the WAV header is complete: the header, and every byte read so far (the head of the file). */
export async function readWavHeader(bytes: AsyncIterator<Uint8Array>, first: Buffer): Promise<{ info: WavInfo; head: Buffer }> {
  let head = first;
  let info = parseWavHeader(head);
  while (!info) {
    const r = await bytes.next();
    if (r.done) throw new CodecError('invalid_audio', 'WAV: file ends before the sample data');
    head = Buffer.concat([head, r.value]);
    info = parseWavHeader(head);
  }
  return { info, head };
}

/**
 * Streams mono float PCM out of a PCM/float WAV without holding the file: the
 * frames in `head` after the header, then the rest as it arrives. A declared data
 * size larger than what arrives is treated as a live stream's placeholder, not an error.
 */
export function decodeWavPcm(info: WavInfo, head: Buffer, bytes: AsyncIterator<Uint8Array>): DecodedStream {
  const { encoding, channels, dataOffset, dataBytes, bigEndian } = info;
  if (encoding === null) throw new CodecError('unsupported_media', `WAV format ${info.format} is not PCM or IEEE float`);
  const declared = dataBytes === 0 || dataBytes === 0xffffffff ? Infinity : dataBytes;
  const bps = BYTES_PER_SAMPLE[encoding];
  async function* frames(): AsyncGenerator<Float32Array> {
    const asm = new FrameAssembler(channels * bps);
    let remaining = declared;
    let chunk: Uint8Array = head.subarray(dataOffset);
    for (;;) {
      const take = chunk.subarray(0, Math.min(chunk.length, remaining));
      remaining -= take.length;
      const whole = asm.push(take);
      if (whole.length) yield toMonoFloat(bigEndian ? toLittleEndian(whole, bps) : whole, encoding!, channels);
      if (remaining <= 0) break; // trailing chunks (LIST, id3) are ignored
      const r = await bytes.next();
      if (r.done) break;
      chunk = r.value;
    }
  }
  const durationSec = Number.isFinite(declared) ? declared / (channels * bps) / info.sampleRate : undefined;
  return { sampleRate: info.sampleRate, channels, durationSec, pcm: frames() };
}

/** A copy of whole big-endian samples of `width` bytes with each sample's bytes reversed. */
function toLittleEndian(bytes: Uint8Array, width: number): Uint8Array {
  if (width === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let p = 0; p < bytes.length; p += width) for (let i = 0; i < width; i++) out[p + i] = bytes[p + width - 1 - i];
  return out;
}

/** A WAV file (mono or interleaved, float32 samples written as 16-bit PCM or 32-bit float). */
export function encodeWav(pcm: Float32Array, sampleRate: number, bits: '16' | '32f' = '16'): Buffer {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, sampleRate, '32f', pcm);
  if (bits === '16') wav.toBitDepth('16');
  return Buffer.from(wav.toBuffer());
}
