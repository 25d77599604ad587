import type { PublisherInfo } from '../../protocol/rooms.js';
import { ProtocolError } from '../../protocol/errors.js';
import type { Room, RoomRegistry, RoomSubscriber } from './room.js';

export type PublisherDescription = Omit<PublisherInfo, 'publisher' | 'nextFrame'>;

/** A publisher's place in a room, held from its accepted `start` to the end of its stream. */
export interface PublisherSlot {
  readonly room: Room;
  /** The stream is ready: the publisher joins the room (on every node). */
  start(info: PublisherDescription): PublisherInfo;
  /** One kind-2 packet of the publisher; returns to how many of this node's listeners it went. */
  packet(bytes: Uint8Array): number;
  /** The stream ended, or its start was refused: `publisher_left` if it had started; the slot is freed. */
  end(): void;
}

/**
 * How a room reaches its members. LocalRelay: everyone is in this process. RedisRelay
 * (redis-relay.ts): publishers, listener counts and keys are shared through Redis, and each node
 * fans packets out to its own listeners.
 */
export interface RoomRelay {
  /** Takes a publisher slot in `room`; throws `too_many_streams` when the room has `maxPublishers`. */
  reservePublisher(room: string, maxPublishers: number): PublisherSlot | Promise<PublisherSlot>;
  /**
   * The room a listener joins, holding every node's publishers; the listener adds itself to its
   * subscribers. Every successful `join` is paired with one `leave`.
   */
  join(room: string): Room | Promise<Room>;
  leave(room: Room, subscriber: RoomSubscriber): void;
  close(): Promise<void>;
}

/** Rooms of one process: what a server without --redis-url does. */
export class LocalRelay implements RoomRelay {
  constructor(private readonly registry: RoomRegistry) {}

  reservePublisher(name: string, maxPublishers: number): PublisherSlot {
    const room = this.registry.get(name);
    if (room.publishers.size + room.reserved >= maxPublishers) {
      this.registry.release(room);
      throw new ProtocolError('too_many_streams', `room "${name}" already has ${maxPublishers} publishers`);
    }
    room.reserved++;
    return new LocalSlot(room, this.registry);
  }

  join(name: string): Room {
    return this.registry.get(name);
  }

  leave(room: Room, subscriber: RoomSubscriber): void {
    room.subscribers.delete(subscriber);
    this.registry.release(room);
  }

  async close(): Promise<void> {}
}

/** A slot whose room lives in this process; `publisher` is given when a shared registry numbers publishers. */
export class LocalSlot implements PublisherSlot {
  protected publisher: number | undefined;
  private reserved = true;

  constructor(readonly room: Room, private readonly registry: RoomRegistry, protected readonly number?: number) {}

  start(info: PublisherDescription): PublisherInfo {
    this.unreserve();
    const full = this.room.addPublisher(info, this.number);
    this.publisher = full.publisher;
    return full;
  }

  packet(bytes: Uint8Array): number {
    return this.publisher === undefined ? 0 : this.room.publish(this.publisher, bytes);
  }

  end(): void {
    this.unreserve();
    if (this.publisher !== undefined) this.room.removePublisher(this.publisher);
    this.publisher = undefined;
    this.registry.release(this.room);
  }

  private unreserve(): void {
    if (!this.reserved) return;
    this.reserved = false;
    this.room.reserved--;
  }
}
