import type { ReadyMessage } from '../../protocol/stream.js';
import type { PublishReadyFields } from '../../protocol/rooms.js';
import type { StreamTap } from '../stream/connection.js';
import { ProtocolError } from '../../protocol/errors.js';
import { parsePublishStartFields, type ControlMessage } from '../../protocol/parse.js';
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

  checkStart(m: ControlMessage): void | Promise<void> {
    this.ended(); // a `start` refused after this check (unknown model, ...) may be followed by another
    const { room: name, label, epochMs } = parsePublishStartFields(m);
    if (!mayAccess(this.access, name, 'publish')) throw new ProtocolError('unauthorized', `this key may not publish to room "${name}"`);
    this.label = label;
    this.epochMs = epochMs;
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
