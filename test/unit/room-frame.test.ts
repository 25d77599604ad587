/**
 * server/rooms/room-frame.ts: the WebSocket framing every listener's socket gets (checked with ws's
 * own frame parser, as a client would read it) and the once-per-turn flush.
 */
import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import * as wsExports from 'ws';
import { encodeTokenPacket } from '../../protocol/stream.js';
import { encodeRoomPacket } from '../../protocol/rooms.js';
import { RoomFrame, binaryWebSocketFrame, flushAfterTurn } from '../../server/rooms/room-frame.js';

/** ws's frame parser, client side (server frames are unmasked); not in @types/ws. */
const { Receiver } = wsExports as unknown as { Receiver: new (o: { isServer: boolean; maxPayload: number }) => Writable };

function parse(bytes: Buffer): { data: Buffer; binary: boolean }[] {
  const got: { data: Buffer; binary: boolean }[] = [];
  const r = new Receiver({ isServer: false, maxPayload: 1 << 20 });
  r.on('message', (data: Buffer, binary: boolean) => got.push({ data: Buffer.from(data), binary }));
  r.on('error', (e: Error) => {
    throw e;
  });
  // arrive in pieces, as from a socket
  for (let i = 0; i < bytes.length; i += 7) r.write(bytes.subarray(i, i + 7));
  return got;
}

describe('binaryWebSocketFrame', () => {
  it.each([0, 1, 125, 126, 127, 65535, 65536, 70000])('a %i-byte payload is one binary message for a client', (n) => {
    const payload = Uint8Array.from({ length: n }, (_, i) => (i * 31) & 255);
    const got = parse(binaryWebSocketFrame(payload));
    expect(got).toHaveLength(1);
    expect(got[0].binary).toBe(true);
    expect(got[0].data.equals(Buffer.from(payload))).toBe(true);
  });

  it('frames written back to back are read as separate messages, in order', () => {
    const a = binaryWebSocketFrame(Uint8Array.of(1, 2, 3));
    const b = binaryWebSocketFrame(new Uint8Array(300).fill(9));
    const got = parse(Buffer.concat([a, b, a]));
    expect(got.map((m) => m.data.length)).toEqual([3, 300, 3]);
  });
});

describe('RoomFrame', () => {
  it('frames the kind-16 bytes it was given, which it keeps as its payload', () => {
    const packet = encodeTokenPacket({ numCodebooks: 2, numFrames: 3, codes: new Int32Array(6).fill(5) }, 4, 90, 2);
    const kind16 = encodeRoomPacket(7, packet);
    const frame = new RoomFrame(kind16, 3);
    expect(Buffer.from(frame.payload).equals(Buffer.from(kind16))).toBe(true);
    expect(parse(frame.wire)[0].data.equals(Buffer.from(kind16))).toBe(true);
  });
});

describe('flushAfterTurn', () => {
  it('flushes each waiting writer once, after the current turn', async () => {
    const flushed: string[] = [];
    const a = { flush: () => flushed.push('a') };
    const b = { flush: () => flushed.push('b') };
    flushAfterTurn(a);
    flushAfterTurn(b);
    flushAfterTurn(a);
    expect(flushed).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(flushed).toEqual(['a', 'b']);
    flushAfterTurn(b); // a later turn schedules again
    await new Promise((r) => setImmediate(r));
    expect(flushed).toEqual(['a', 'b', 'b']);
  });
});
