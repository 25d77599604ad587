/** The binary frames of docs/protocol.md, encoded and parsed on bytes (no socket). */
import { describe, expect, it } from 'vitest';
import {
  WireError, codeBytesFor, decodeAudioIn, decodeAudioOut, decodeTokenPacket, encodeAudioIn, encodeAudioOut, encodeTokenPacket,
  type Tokens,
} from '../../protocol/stream.js';
import { decodeRoomPacket, encodeRoomPacket } from '../../protocol/rooms.js';

const tokens: Tokens = { numCodebooks: 2, numFrames: 3, codes: Int32Array.of(0, 1, 2, 10, 11, 1023) };

function wireError(fn: () => unknown): WireError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WireError);
    return e as WireError;
  }
  throw new Error('no error');
}

describe('token packets (kind 2)', () => {
  it('lays codes out frame-major after a 16-byte header, and parses back what it wrote', () => {
    const frame = encodeTokenPacket(tokens, 7, 300, 2);
    expect(frame.length).toBe(16 + 3 * 2 * 2);
    expect([...frame.subarray(0, 4)]).toEqual([2, 0, 2, 2]);
    const codes = new DataView(frame.buffer, 16);
    expect([0, 1, 2, 3, 4, 5].map((i) => codes.getUint16(2 * i, true))).toEqual([0, 10, 1, 11, 2, 1023]);
    expect(decodeTokenPacket(frame, { codebooks: 2, codeBytes: 2, codebookSize: 1024 })).toEqual({ seq: 7, firstFrame: 300, tokens });
  });

  it('uses 4-byte codes past 65536 entries, and reads a packet inside a larger buffer', () => {
    expect([codeBytesFor(1024), codeBytesFor(65536), codeBytesFor(65537)]).toEqual([2, 2, 4]);
    const big: Tokens = { numCodebooks: 1, numFrames: 2, codes: Int32Array.of(70000, 3) };
    const frame = encodeTokenPacket(big, 0xffffffff, 1, 4);
    const padded = new Uint8Array(frame.length + 5);
    padded.set(frame, 5);
    expect(decodeTokenPacket(padded.subarray(5))).toEqual({ seq: 0xffffffff, firstFrame: 1, tokens: big });
  });

  it('names what is wrong with a bad packet, with the protocol error code', () => {
    const good = encodeTokenPacket(tokens, 0, 0, 2);
    const with_ = (i: number, v: number) => Object.assign(good.slice(), { [i]: v });
    expect(wireError(() => decodeTokenPacket(with_(0, 1))).code).toBe('bad_frame');
    expect(wireError(() => decodeTokenPacket(good.subarray(0, 10))).code).toBe('bad_frame');
    expect(wireError(() => decodeTokenPacket(with_(3, 3))).message).toBe('code width 3 (2 or 4 bytes)');
    expect(wireError(() => decodeTokenPacket(good, { codeBytes: 4 })).code).toBe('bad_frame');
    expect(wireError(() => decodeTokenPacket(with_(2, 0))).message).toBe('codebook count 0');
    expect(wireError(() => decodeTokenPacket(good, { codebooks: 8 }))).toMatchObject({ code: 'model_mismatch', message: 'packet has 2 codebooks, stream has 8' });
    expect(wireError(() => decodeTokenPacket(good.subarray(0, good.length - 2))).message).toMatch(/^packet of 26 bytes, header says 3 frames/);
    expect(wireError(() => decodeTokenPacket(good, { codebookSize: 1000 }))).toMatchObject({ code: 'invalid_tokens', message: 'code 1023 at codebook 1, frame 2 outside [0, 1000)' });
  });
});

describe('audio frames (kinds 1 and 3)', () => {
  it('round-trips s16le exactly for 16-bit values and clips the rest', () => {
    const pcm = Float32Array.of(0, 0.5, -1, 32767 / 32768, 1.5, -2);
    const back = decodeAudioIn(encodeAudioIn(pcm, 's16le'), 's16le');
    expect([...back]).toEqual([0, 0.5, -1, 32767 / 32768, 32767 / 32768, -1]);
  });

  it('round-trips f32le and refuses samples that are not finite', () => {
    const pcm = Float32Array.of(0.25, -0.125, 3);
    expect(decodeAudioIn(encodeAudioIn(pcm, 'f32le'), 'f32le')).toEqual(pcm);
    const nan = encodeAudioIn(Float32Array.of(0, Number.NaN), 'f32le');
    expect(wireError(() => decodeAudioIn(nan, 'f32le'))).toMatchObject({ code: 'invalid_audio', message: 'sample 1 is NaN: audio must be finite' });
    expect(wireError(() => decodeAudioIn(encodeAudioIn(pcm, 'f32le').subarray(0, 9), 'f32le')).code).toBe('bad_frame');
    expect(wireError(() => decodeAudioIn(encodeTokenPacket(tokens, 0, 0, 2), 's16le')).code).toBe('bad_frame');
  });

  it('carries sequence number and first sample in audio-out frames, and checks the sample count', () => {
    const frame = encodeAudioOut(Float32Array.of(0.5, -0.5), 's16le', 3, 48000);
    expect(decodeAudioOut(frame, 's16le')).toEqual({ seq: 3, firstSample: 48000, pcm: Float32Array.of(0.5, -0.5) });
    new DataView(frame.buffer).setUint32(12, 3, true);
    expect(wireError(() => decodeAudioOut(frame, 's16le')).message).toBe('header says 3 samples, payload holds 2');
  });
});

describe('room token frames (kind 16)', () => {
  it('wraps a token packet unchanged behind the publisher id', () => {
    const packet = encodeTokenPacket(tokens, 1, 2, 2);
    const frame = encodeRoomPacket(42, packet);
    expect(frame.subarray(8)).toEqual(packet);
    expect(decodeRoomPacket(frame, { codebooks: 2 })).toEqual({ publisher: 42, packet: { seq: 1, firstFrame: 2, tokens } });
    expect(wireError(() => decodeRoomPacket(packet)).code).toBe('bad_frame');
  });
});
