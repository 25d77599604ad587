import type { ReadyMessage } from '../../clients/ts/protocol.js';
import { ROOM_NAME, type PublishReadyFields } from '../../clients/ts/room-protocol.js';
import type { StreamTap } from '../stream/connection.js';
import { StreamError } from '../stream/errors.js';
import { mayAccess, type RoomAccess } from './grants.js';
import type { Room, RoomMetrics, RoomRegistry } from './room.js';

export interface PublisherDeps {
  registry: RoomRegistry;
  metrics: RoomMetrics;
  maxPublishers: number;
}

/**
 * Makes an encode stream a room publisher: `start` must name a room the key may publish to,
 * `ready` gains { room, publisher }, every token packet is relayed, the end is announced.
 */
export class PublisherTap implements StreamTap {
  private room: Room | undefined;
  private publisher: number | undefined;
  private label: string | undefined;
  private epochMs: number | undefined;
  private reserved = false;

  constructor(private readonly deps: PublisherDeps, private readonly access: RoomAccess, private readonly streamId: string) {}

  checkStart(m: Record<string, unknown>): void {
    this.ended(); // a `start` refused after this check (unknown model, ...) may be followed by another
    if (m.direction !== 'encode') throw new StreamError('bad_message', 'room publishers send audio: direction must be "encode"');
    const name = m.room;
    if (typeof name !== 'string' || !ROOM_NAME.test(name)) throw new StreamError('bad_message', 'room must be 1-64 characters of [A-Za-z0-9._-]');
    if (!mayAccess(this.access, name, 'publish')) throw new StreamError('unauthorized', `this key may not publish to room "${name}"`);
    if (m.label !== undefined && (typeof m.label !== 'string' || m.label.length > 64)) throw new StreamError('bad_message', 'label must be a string of up to 64 characters');
    if (m.epochMs !== undefined && (typeof m.epochMs !== 'number' || !Number.isFinite(m.epochMs))) throw new StreamError('bad_message', 'epochMs must be a number (ms since the Unix epoch)');
    const room = this.deps.registry.get(name);
    if (room.publishers.size + room.reserved >= this.deps.maxPublishers) {
      this.deps.registry.release(room);
      throw new StreamError('too_many_streams', `room "${name}" already has ${this.deps.maxPublishers} publishers`);
    }
    // the slot is held from here: the stream's session is built asynchronously before `ready`
    room.reserved++;
    this.reserved = true;
    this.room = room;
    this.label = m.label as string | undefined;
    this.epochMs = m.epochMs as number | undefined;
  }

  started(ready: ReadyMessage): Record<string, unknown> {
    const room = this.room!;
    this.unreserve();
    const info = room.addPublisher({
      streamId: this.streamId, label: this.label, model: ready.model, modelVersion: ready.modelVersion, modelSampleRate: ready.modelSampleRate,
      hopLength: ready.hopLength, frameRate: ready.frameRate, codebooks: ready.codebooks, codebookSize: ready.codebookSize, codeBytes: ready.codeBytes,
      chunkFrames: ready.chunkFrames, decoderLookaheadFrames: ready.decoderLookaheadFrames, epochMs: this.epochMs,
    });
    this.publisher = info.publisher;
    this.deps.metrics.publishers.inc();
    const fields: PublishReadyFields = { room: room.name, publisher: info.publisher };
    return { ...fields };
  }

  packet(bytes: Uint8Array): void {
    if (this.publisher === undefined) return;
    const n = this.room!.publish(this.publisher, bytes);
    if (n > 0) this.deps.metrics.relayed.inc(n);
  }

  ended(): void {
    const room = this.room;
    if (!room) return;
    this.unreserve();
    if (this.publisher !== undefined) {
      room.removePublisher(this.publisher);
      this.deps.metrics.publishers.dec();
      this.publisher = undefined;
    }
    this.deps.registry.release(room);
    this.room = undefined;
  }

  private unreserve(): void {
    if (!this.reserved) return;
    this.reserved = false;
    this.room!.reserved--;
  }
}
