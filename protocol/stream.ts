/**
 * tokstream streaming protocol v1 (docs/protocol.md): message types and the binary frame
 * layouts. Plain TypeScript with no Node or DOM dependency, so browsers, Node clients and the
 * server share one definition of the wire format.
 */
import { ProtocolError } from './errors.js';

export const PROTOCOL_VERSION = 1;
export const PROTOCOL_V1 = 'tokstream.v1';
export const KEY_PROTOCOL_PREFIX = 'tokstream.key.';

export const KIND_AUDIO_IN = 1;
export const KIND_TOKENS = 2;
export const KIND_AUDIO_OUT = 3;
export const AUDIO_IN_HEADER = 4;
export const TOKENS_HEADER = 16;
export const AUDIO_OUT_HEADER = 16;

export type Direction = 'encode' | 'decode';
export type SampleFormat = 's16le' | 'f32le';

export interface StartMessage {
  type: 'start';
  version?: number;
  model?: string;
  direction: Direction;
  sampleRate?: number;
  format?: SampleFormat;
  codebooks?: number;
  chunkMs?: number;
}

/** Asks for every result of what was sent so far; answered by `flushed` with the same marker. */
export interface FlushMessage {
  type: 'flush';
  marker: string | number;
}

export interface ReadyMessage {
  type: 'ready';
  version: number;
  streamId: string;
  model: string;
  modelVersion: string;
  direction: Direction;
  sampleRate: number;
  format: SampleFormat;
  modelSampleRate: number;
  hopLength: number;
  frameRate: number;
  codebooks: number;
  codebookSize: number;
  codeBytes: 2 | 4;
  chunkFrames: number;
  chunkMs: number;
  encoderLookaheadFrames: number;
  decoderLookaheadFrames: number;
  limits: {
    maxFrameBytes: number;
    maxTextBytes: number;
    maxAheadSec: number;
    maxBufferedSec: number;
    maxOutboundBytes: number;
    idleTimeoutMs: number;
    maxProtocolErrors: number;
  };
}

export interface FlushedMessage {
  type: 'flushed';
  marker: string | number;
  frames: number;
  samples: number;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  fatal: boolean;
  expectedFrame?: number;
}

export interface ClosedMessage {
  type: 'closed';
  frames: number;
  samples: number;
  packets: number;
  durationSec: number;
}

/**
 * The server began to drain (docs/protocol.md §5, "Draining"): this stream may run on for up to
 * `closeInMs`, then it is closed with `shutting_down` (1001). Open the next stream elsewhere.
 */
export interface DrainingMessage {
  type: 'draining';
  closeInMs: number;
  message: string;
}

export type ServerMessage = ReadyMessage | FlushedMessage | ErrorMessage | ClosedMessage | DrainingMessage;

/** Codes of one run of frames; `codes` codebook-major: codes[k * numFrames + t]. */
export interface Tokens {
  numCodebooks: number;
  numFrames: number;
  codes: Int32Array;
}

export interface TokenPacket {
  seq: number;
  firstFrame: number;
  tokens: Tokens;
}

export interface AudioPacket {
  seq: number;
  firstSample: number;
  /** mono samples in [-1, 1] (s16le is scaled by 1/32768) */
  pcm: Float32Array;
}

/** A binary frame that breaks its layout or the stream's expectations. */
export class WireError extends ProtocolError {
  constructor(override readonly code: 'bad_frame' | 'model_mismatch' | 'invalid_tokens' | 'invalid_audio', message: string) {
    super(code, message);
    this.name = 'WireError';
  }
}

export function bytesPerSample(format: SampleFormat): number {
  return format === 's16le' ? 2 : 4;
}

export function codeBytesFor(codebookSize: number): 2 | 4 {
  return codebookSize <= 65536 ? 2 : 4;
}

/** A DataView over exactly the bytes of `b` (which may be a slice of a larger buffer). */
export function frameView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Samples to bytes in `format` (s16le: scaled by 32768, clipped). */
export function pcmToBytes(pcm: Float32Array, format: SampleFormat, out: Uint8Array, offset: number): void {
  const dv = frameView(out);
  if (format === 'f32le') {
    for (let i = 0; i < pcm.length; i++) dv.setFloat32(offset + 4 * i, pcm[i], true);
    return;
  }
  // x32768 is the exact inverse of the /32768 read below, so s16 audio survives a float round trip
  for (let i = 0; i < pcm.length; i++) dv.setInt16(offset + 2 * i, Math.max(-32768, Math.min(32767, Math.round(pcm[i] * 32768))), true);
}

export function bytesToPcm(bytes: Uint8Array, format: SampleFormat): Float32Array {
  const bps = bytesPerSample(format);
  if (bytes.length % bps !== 0) throw new WireError('bad_frame', `${bytes.length} bytes is not a whole number of ${format} samples`);
  const n = bytes.length / bps;
  const out = new Float32Array(n);
  const dv = frameView(bytes);
  if (format === 'f32le') {
    for (let i = 0; i < n; i++) {
      const v = dv.getFloat32(4 * i, true);
      if (!Number.isFinite(v)) throw new WireError('invalid_audio', `sample ${i} is ${v}: audio must be finite`);
      out[i] = v;
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true) / 32768;
  }
  return out;
}

/** Kind-1 frame: 4-byte header + PCM. */
export function encodeAudioIn(pcm: Float32Array, format: SampleFormat): Uint8Array {
  const out = new Uint8Array(AUDIO_IN_HEADER + pcm.length * bytesPerSample(format));
  out[0] = KIND_AUDIO_IN;
  pcmToBytes(pcm, format, out, AUDIO_IN_HEADER);
  return out;
}

export function decodeAudioIn(frame: Uint8Array, format: SampleFormat): Float32Array {
  if (frame.length < AUDIO_IN_HEADER || frame[0] !== KIND_AUDIO_IN) throw new WireError('bad_frame', 'not an audio frame (kind 1, 4-byte header)');
  return bytesToPcm(frame.subarray(AUDIO_IN_HEADER), format);
}

/** Kind-3 frame. */
export function encodeAudioOut(pcm: Float32Array, format: SampleFormat, seq: number, firstSample: number): Uint8Array {
  const out = new Uint8Array(AUDIO_OUT_HEADER + pcm.length * bytesPerSample(format));
  const dv = frameView(out);
  out[0] = KIND_AUDIO_OUT;
  dv.setUint32(4, seq >>> 0, true);
  dv.setUint32(8, firstSample >>> 0, true);
  dv.setUint32(12, pcm.length, true);
  pcmToBytes(pcm, format, out, AUDIO_OUT_HEADER);
  return out;
}

export function decodeAudioOut(frame: Uint8Array, format: SampleFormat): AudioPacket {
  if (frame.length < AUDIO_OUT_HEADER || frame[0] !== KIND_AUDIO_OUT) throw new WireError('bad_frame', 'not an audio-out frame (kind 3)');
  const dv = frameView(frame);
  const count = dv.getUint32(12, true);
  const pcm = bytesToPcm(frame.subarray(AUDIO_OUT_HEADER), format);
  if (pcm.length !== count) throw new WireError('bad_frame', `header says ${count} samples, payload holds ${pcm.length}`);
  return { seq: dv.getUint32(4, true), firstSample: dv.getUint32(8, true), pcm };
}

/** Kind-2 frame: codes frame-major on the wire. */
export function encodeTokenPacket(tokens: Tokens, seq: number, firstFrame: number, codeBytes: 2 | 4): Uint8Array {
  const { numCodebooks: k, numFrames: t, codes } = tokens;
  const out = new Uint8Array(TOKENS_HEADER + t * k * codeBytes);
  const dv = frameView(out);
  out[0] = KIND_TOKENS;
  out[2] = k;
  out[3] = codeBytes;
  dv.setUint32(4, seq >>> 0, true);
  dv.setUint32(8, firstFrame >>> 0, true);
  dv.setUint32(12, t, true);
  let o = TOKENS_HEADER;
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < k; c++, o += codeBytes) {
      if (codeBytes === 2) dv.setUint16(o, codes[c * t + f], true);
      else dv.setUint32(o, codes[c * t + f], true);
    }
  }
  return out;
}

export interface TokenExpectations {
  codebooks?: number;
  codeBytes?: 2 | 4;
  codebookSize?: number;
}

/** Parses a kind-2 frame, checking its layout (and, when given, what the stream expects). */
export function decodeTokenPacket(frame: Uint8Array, expect: TokenExpectations = {}): TokenPacket {
  if (frame.length < TOKENS_HEADER || frame[0] !== KIND_TOKENS) throw new WireError('bad_frame', 'not a token packet (kind 2, 16-byte header)');
  const dv = frameView(frame);
  const k = frame[2];
  const width = frame[3];
  const t = dv.getUint32(12, true);
  if (width !== 2 && width !== 4) throw new WireError('bad_frame', `code width ${width} (2 or 4 bytes)`);
  if (expect.codeBytes !== undefined && width !== expect.codeBytes) throw new WireError('bad_frame', `code width ${width}, this stream uses ${expect.codeBytes}`);
  if (k < 1) throw new WireError('bad_frame', 'codebook count 0');
  if (expect.codebooks !== undefined && k !== expect.codebooks) throw new WireError('model_mismatch', `packet has ${k} codebooks, stream has ${expect.codebooks}`);
  if (frame.length !== TOKENS_HEADER + t * k * width) {
    throw new WireError('bad_frame', `packet of ${frame.length} bytes, header says ${t} frames x ${k} codebooks x ${width} bytes + 16`);
  }
  const codes = new Int32Array(k * t);
  let o = TOKENS_HEADER;
  const size = expect.codebookSize ?? Infinity;
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < k; c++, o += width) {
      const v = width === 2 ? dv.getUint16(o, true) : dv.getUint32(o, true);
      if (v >= size) throw new WireError('invalid_tokens', `code ${v} at codebook ${c}, frame ${f} outside [0, ${size})`);
      codes[c * t + f] = v;
    }
  }
  return { seq: dv.getUint32(4, true), firstFrame: dv.getUint32(8, true), tokens: { numCodebooks: k, numFrames: t, codes } };
}
