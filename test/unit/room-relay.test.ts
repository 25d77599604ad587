/**
 * A room's relay logic in one process (server/rooms/room.ts, relay.ts) with fake subscribers:
 * who gets which frame and event, publisher slots, when a room is forgotten.
 * test/integration/rooms-relay.test.ts runs the same over real sockets and a real model.
 */
import { describe, expect, it } from 'vitest';
import { encodeTokenPacket } from '../../protocol/stream.js';
import { decodeRoomPacket, encodeRoomPacket, type PublisherInfo } from '../../protocol/rooms.js';
import { LocalRelay, type PublisherDescription } from '../../server/rooms/relay.js';
import { RoomRegistry, type RoomSubscriber } from '../../server/rooms/room.js';
import type { RoomFrame } from '../../server/rooms/room-frame.js';

class FakeSubscriber implements RoomSubscriber {
  readonly frames: Uint8Array[] = [];
  /** F of each frame offered, as the room counted it */
  readonly frameCounts: number[] = [];
  readonly events: { type: string; publisher?: PublisherInfo | number; frames?: number }[] = [];
  constructor(readonly id: string) {}
  offer(frame: RoomFrame): void {
    this.frames.push(frame.payload);
    this.frameCounts.push(frame.frames);
  }
  sendJson(m: object): void {
    this.events.push(m as FakeSubscriber['events'][number]);
  }
}

const description: PublisherDescription = {
  streamId: 's', model: 'default', modelVersion: '1.0.0', modelSampleRate: 24000, hopLength: 320, frameRate: 75,
  codebooks: 1, codebookSize: 1024, codeBytes: 2, chunkFrames: 2, decoderLookaheadFrames: 0, label: 'alice',
};

/** A kind-2 packet of `frames` frames from `firstFrame`, one codebook. */
const packet = (firstFrame: number, frames = 2) => encodeTokenPacket({ numCodebooks: 1, numFrames: frames, codes: new Int32Array(frames).fill(7) }, 0, firstFrame, 2);

function roomWithListeners(n: number) {
  const registry = new RoomRegistry();
  const relay = new LocalRelay(registry);
  const room = relay.join('lobby');
  const listeners = Array.from({ length: n }, (_, i) => new FakeSubscriber(`l${i}`));
  for (const l of listeners) room.subscribers.add(l);
  return { registry, relay, room, listeners };
}

describe('LocalRelay and Room', () => {
  it('sends every listener the same kind-16 frame of a publisher\'s packet, and announces publishers joining and leaving', () => {
    const { relay, listeners } = roomWithListeners(3);
    const slot = relay.reservePublisher('lobby', 4);
    expect(slot.packet(packet(0))).toBe(0); // not started: nothing relayed
    const info = slot.start(description);
    expect(info).toMatchObject({ publisher: 1, nextFrame: 0, label: 'alice' });
    expect(slot.packet(packet(0))).toBe(3);
    expect(slot.packet(packet(2, 3))).toBe(3);
    for (const l of listeners) {
      expect(l.frames).toHaveLength(2);
      expect(l.frames[1]).toBe(listeners[0].frames[1]); // one shared buffer, not a copy per listener
      expect(decodeRoomPacket(l.frames[1])).toMatchObject({ publisher: 1, packet: { firstFrame: 2, tokens: { numFrames: 3 } } });
      expect(l.frameCounts).toEqual([2, 3]);
    }
    slot.end();
    expect(listeners[2].events).toEqual([{ type: 'publisher_joined', publisher: info }, { type: 'publisher_left', publisher: 1, frames: 5 }]);
  });

  it('numbers publishers uniquely and refuses one past maxPublishers, counting slots still starting', () => {
    const { relay, room } = roomWithListeners(0);
    const a = relay.reservePublisher('lobby', 2);
    const b = relay.reservePublisher('lobby', 2); // reserved, not started yet
    expect(() => relay.reservePublisher('lobby', 2)).toThrow(expect.objectContaining({ code: 'too_many_streams' }));
    expect([a.start(description).publisher, b.start(description).publisher]).toEqual([1, 2]);
    a.end();
    const c = relay.reservePublisher('lobby', 2);
    expect(c.start(description).publisher).toBe(3);
    expect([...room.publishers.keys()]).toEqual([2, 3]);
  });

  it('forgets a room when its last member goes, not before', () => {
    const { registry, relay, room, listeners } = roomWithListeners(1);
    const slot = relay.reservePublisher('lobby', 1);
    relay.leave(room, listeners[0]);
    expect(registry.peek('lobby')).toBe(room); // the publisher's slot still holds it
    slot.end(); // refused start: the slot is freed without an announcement
    expect(registry.size).toBe(0);
    expect(relay.join('lobby')).not.toBe(room);
  });

  it('relays a frame made on another node once: a repeat of frames already passed on is dropped', () => {
    const { room, listeners } = roomWithListeners(2);
    const p = room.addPublisher(description, 9).publisher;
    const frame = (first: number) => encodeRoomPacket(p, packet(first));
    expect(room.deliver(frame(0))).toBe(2);
    expect(room.deliver(frame(0))).toBe(0);
    expect(room.deliver(frame(2))).toBe(2);
    expect(listeners[0].frames).toHaveLength(2);
    expect(listeners[0].frameCounts).toEqual([2, 2]);
    expect(room.publishers.get(p)?.nextFrame).toBe(4);
  });
});
