import { Counter, Gauge, type Registry } from 'prom-client';
import { ROOM_TOKENS_HEADER, encodeRoomPacket, type PublisherInfo } from '../../protocol/rooms.js';
import { RoomFrame } from './room-frame.js';

/** A room member that receives packets: a listener connection (server/rooms/listener.ts). */
export interface RoomSubscriber {
  readonly id: string;
  /** Offers a kind-16 frame; the subscriber sends it or drops it, never waits (slow-subscriber policy). */
  offer(frame: RoomFrame): void;
  /** Room events (publisher joined/left); small and never dropped. */
  sendJson(m: object): void;
}

export interface RoomMetrics {
  listeners: Gauge;
  publishers: Gauge;
  relayed: Counter;
  dropped: Counter;
  slowListeners: Counter;
}

export function roomMetrics(registry: Registry): RoomMetrics {
  return {
    listeners: new Gauge({ name: 'tokstream_room_listeners', help: 'Room listener connections', registers: [registry] }),
    publishers: new Gauge({ name: 'tokstream_room_publishers', help: 'Publishers in rooms', registers: [registry] }),
    relayed: new Counter({ name: 'tokstream_room_packets_relayed_total', help: 'Token packets sent to room listeners', registers: [registry] }),
    dropped: new Counter({ name: 'tokstream_room_packets_dropped_total', help: 'Token packets dropped for slow room listeners', registers: [registry] }),
    slowListeners: new Counter({ name: 'tokstream_room_slow_listeners_total', help: 'Room listeners closed with slow_consumer', registers: [registry] }),
  };
}

/**
 * One room: its publishers (numbered, room-unique) and subscribers. Publishing offers one shared
 * frame, framed for the wire once, to every subscriber and returns at once: nothing here waits on
 * a subscriber.
 */
export class Room {
  readonly publishers = new Map<number, PublisherInfo>();
  readonly subscribers = new Set<RoomSubscriber>();
  /** Publisher slots taken by streams still starting (their `start` is accepted, `ready` not sent yet). */
  reserved = 0;
  /** Listeners whose `join` waits for the relay (the room's state on other nodes). */
  joining = 0;
  private nextPublisher = 1;

  constructor(readonly name: string) {}

  get empty(): boolean {
    return this.publishers.size === 0 && this.subscribers.size === 0 && this.reserved === 0 && this.joining === 0;
  }

  /** `publisher`: the number a shared registry gave it (rooms across nodes); else the room numbers it. */
  addPublisher(info: Omit<PublisherInfo, 'publisher' | 'nextFrame'>, publisher = this.nextPublisher++): PublisherInfo {
    const full: PublisherInfo = { ...info, publisher, nextFrame: 0 };
    this.publishers.set(full.publisher, full);
    this.broadcast({ type: 'publisher_joined', publisher: full });
    return full;
  }

  removePublisher(publisher: number, frames?: number): void {
    const info = this.publishers.get(publisher);
    if (!info) return;
    this.publishers.delete(publisher);
    this.broadcast({ type: 'publisher_left', publisher, frames: frames ?? info.nextFrame });
  }

  /** Relays one kind-2 packet of `publisher`; returns how many subscribers it was offered to. */
  publish(publisher: number, tokenPacket: Uint8Array): number {
    const info = this.publishers.get(publisher);
    if (!info) return 0;
    const dv = new DataView(tokenPacket.buffer, tokenPacket.byteOffset, tokenPacket.byteLength);
    const frames = dv.getUint32(12, true);
    info.nextFrame = dv.getUint32(8, true) + frames;
    if (this.subscribers.size === 0) return 0;
    const frame = new RoomFrame(encodeRoomPacket(publisher, tokenPacket), frames);
    for (const s of this.subscribers) s.offer(frame);
    return this.subscribers.size;
  }

  /**
   * Relays a kind-16 frame made on another node; returns how many subscribers it was offered to.
   * A packet that does not start at or after the publisher's next frame was already accounted for
   * (a node catching up on a room sees it twice) and is not sent again.
   */
  deliver(frame: Uint8Array): number {
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const info = this.publishers.get(dv.getUint32(4, true));
    if (!info) return 0;
    const firstFrame = dv.getUint32(ROOM_TOKENS_HEADER + 8, true);
    if (firstFrame < info.nextFrame) return 0;
    const frames = dv.getUint32(ROOM_TOKENS_HEADER + 12, true);
    info.nextFrame = firstFrame + frames;
    if (this.subscribers.size === 0) return 0;
    const shared = new RoomFrame(frame, frames);
    for (const s of this.subscribers) s.offer(shared);
    return this.subscribers.size;
  }

  private broadcast(m: object): void {
    for (const s of this.subscribers) s.sendJson(m);
  }
}

/** Rooms exist while they have members; created on first use, forgotten when empty. */
export class RoomRegistry {
  private readonly rooms = new Map<string, Room>();

  get(name: string): Room {
    let room = this.rooms.get(name);
    if (!room) {
      room = new Room(name);
      this.rooms.set(name, room);
    }
    return room;
  }

  peek(name: string): Room | undefined {
    return this.rooms.get(name);
  }

  /** Forgets the room if nobody is left in it. */
  release(room: Room): void {
    if (room.empty && this.rooms.get(room.name) === room) this.rooms.delete(room.name);
  }

  get size(): number {
    return this.rooms.size;
  }

  names(): IterableIterator<string> {
    return this.rooms.keys();
  }
}
