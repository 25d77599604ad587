import type { ReadyMessage } from '../../clients/ts/protocol.js';
import { ROOM_NAME, type PublishReadyFields } from '../../clients/ts/room-protocol.js';
import type { StreamTap } from '../stream/connection.js';
import { StreamError } from '../stream/errors.js';
import { mayAccess, type RoomAccess } from './grants.js';
import type { PublisherSlot, RoomRelay } from './relay.js';
import type { RoomMetrics } from './room.js';

export interface PublisherDeps {
  relay: RoomRelay;
  metrics: RoomMetrics;
  maxPublishers: number;
}

/**
 * Makes an encode stream a room publisher: `start` must name a room the key may publish to,
 * `ready` gains { room, publisher }, every token packet is relayed, the end is announced.
 */
export class PublisherTap implements StreamTap {
  private slot: PublisherSlot | undefined;
  private publishing = false;
  private label: string | undefined;
  private epochMs: number | undefined;

  constructor(private readonly deps: PublisherDeps, private readonly access: RoomAccess, private readonly streamId: string) {}

  checkStart(m: Record<string, unknown>): void | Promise<void> {
    this.ended(); // a `start` refused after this check (unknown model, ...) may be followed by another
    if (m.direction !== 'encode') throw new StreamError('bad_message', 'room publishers send audio: direction must be "encode"');
    const name = m.room;
    if (typeof name !== 'string' || !ROOM_NAME.test(name)) throw new StreamError('bad_message', 'room must be 1-64 characters of [A-Za-z0-9._-]');
    if (!mayAccess(this.access, name, 'publish')) throw new StreamError('unauthorized', `this key may not publish to room "${name}"`);
    if (m.label !== undefined && (typeof m.label !== 'string' || m.label.length > 64)) throw new StreamError('bad_message', 'label must be a string of up to 64 characters');
    if (m.epochMs !== undefined && (typeof m.epochMs !== 'number' || !Number.isFinite(m.epochMs))) throw new StreamError('bad_message', 'epochMs must be a number (ms since the Unix epoch)');
    this.label = m.label as string | undefined;
    this.epochMs = m.epochMs as number | undefined;
    // the slot is held from here: the stream's session is built asynchronously before `ready`
    const slot = this.deps.relay.reservePublisher(name, this.deps.maxPublishers);
    if (!(slot instanceof Promise)) {
      this.slot = slot;
      return;
    }
    return slot.then((s) => {
      this.slot = s;
    });
  }

  started(ready: ReadyMessage): Record<string, unknown> {
    const slot = this.slot!;
    const info = slot.start({
      streamId: this.streamId, label: this.label, model: ready.model, modelVersion: ready.modelVersion, modelSampleRate: ready.modelSampleRate,
      hopLength: ready.hopLength, frameRate: ready.frameRate, codebooks: ready.codebooks, codebookSize: ready.codebookSize, codeBytes: ready.codeBytes,
      chunkFrames: ready.chunkFrames, decoderLookaheadFrames: ready.decoderLookaheadFrames, epochMs: this.epochMs,
    });
    this.publishing = true;
    this.deps.metrics.publishers.inc();
    const fields: PublishReadyFields = { room: slot.room.name, publisher: info.publisher };
    return { ...fields };
  }

  packet(bytes: Uint8Array): void {
    if (!this.publishing) return;
    const n = this.slot!.packet(bytes);
    if (n > 0) this.deps.metrics.relayed.inc(n);
  }

  ended(): void {
    const slot = this.slot;
    if (!slot) return;
    this.slot = undefined;
    if (this.publishing) this.deps.metrics.publishers.dec();
    this.publishing = false;
    slot.end();
  }
}
