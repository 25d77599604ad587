/**
 * Rooms client (docs/protocol.md, "Rooms"), for browsers and Node.
 *
 *   // speak: an ordinary encode stream whose packets the server also relays to the room
 *   const pub = await openRoomPublisher({ url: 'ws://host:8080/v1/rooms/publish', room: 'lobby', apiKey, WebSocket, sampleRate: 48000 });
 *   pub.write(samples);
 *   // listen: token packets of every publisher, with its number and frame indices
 *   const room = await joinRoom({ url: 'ws://host:8080/v1/rooms/listen', room: 'lobby', apiKey, WebSocket });
 *   for await (const ev of room) if (ev.type === 'tokens') decode(ev.publisher, ev.packet);
 */
import { EncodeStream, type StreamOptions } from './client.js';
import type { DrainingMessage, ErrorMessage, TokenPacket } from '../../protocol/stream.js';
import {
  KIND_ROOM_TOKENS, decodeRoomPacket, type JoinedMessage, type ListenerClosedMessage, type PublishReadyFields, type PublisherInfo, type PublisherJoinedMessage,
  type PublisherLeftMessage,
} from '../../protocol/rooms.js';
import { Inbox, openSocket, reportServerError, sendJson, startKeepalive, type SocketOptions, type TokstreamError, type WebSocketLike } from './socket.js';

export interface PublishOptions extends StreamOptions {
  room: string;
  /** Shown to listeners. */
  label?: string;
  /** Wall-clock time (ms since the Unix epoch) when sample 0 of the audio you will write was captured; lets listeners measure mouth-to-ear latency. */
  epochMs?: number;
}

/** An encode stream published to a room; `ready` also carries { room, publisher }. */
export async function openRoomPublisher(opts: PublishOptions): Promise<EncodeStream & { ready: PublishReadyFields }> {
  const { room, label, epochMs, ...rest } = opts;
  const s = await EncodeStream.open({ ...rest, startExtra: { ...rest.startExtra, room, label, epochMs } });
  return s as EncodeStream & { ready: PublishReadyFields };
}

export interface JoinOptions extends SocketOptions {
  /** ws(s)://host:port/v1/rooms/listen */
  url: string;
  room: string;
  keepaliveMs?: number;
  onError?: (e: TokstreamError) => void;
}

export type RoomEvent =
  | { type: 'tokens'; publisher: number; packet: TokenPacket; bytes: number; receivedAt: number }
  | { type: 'publisher_joined'; publisher: PublisherInfo }
  | { type: 'publisher_left'; publisher: number; frames: number }
  /** The server is draining: this subscription ends within `closeInMs` (1001); join again elsewhere. */
  | { type: 'draining'; closeInMs: number };

/** A joined room: events in arrival order; ends when the socket closes (a fatal error is thrown). */
export class RoomSubscription implements AsyncIterable<RoomEvent> {
  readonly publishers = new Map<number, PublisherInfo>();
  /** Binary bytes received (bandwidth). */
  bytesReceived = 0;
  closeCode: number | undefined;
  private readonly inbox = new Inbox<RoomEvent>();
  private keepalive: ReturnType<typeof setInterval> | undefined;

  private constructor(private readonly ws: WebSocketLike, readonly joined: JoinedMessage, private readonly opts: JoinOptions) {
    for (const p of joined.publishers) this.publishers.set(p.publisher, p);
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => this.onClose(ev.code, ev.reason);
    this.keepalive = startKeepalive(ws, opts.keepaliveMs);
  }

  static async join(opts: JoinOptions): Promise<RoomSubscription> {
    const { ws, answer, early } = await openSocket<JoinedMessage>(opts, { type: 'join', room: opts.room }, 'joined');
    const sub = new RoomSubscription(ws, answer, opts);
    for (const d of early) sub.onMessage(d);
    return sub;
  }

  /** Leaves the room. */
  close(): void {
    sendJson(this.ws, { type: 'close' });
    clearInterval(this.keepalive);
  }

  [Symbol.asyncIterator](): AsyncIterator<RoomEvent> {
    return this.inbox[Symbol.asyncIterator]();
  }

  private push(e: RoomEvent): void {
    this.inbox.push(e);
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') {
      const bytes = new Uint8Array(data as ArrayBuffer);
      if (bytes[0] !== KIND_ROOM_TOKENS) return;
      this.bytesReceived += bytes.length;
      const { publisher, packet } = decodeRoomPacket(bytes);
      const info = this.publishers.get(publisher);
      if (info) info.nextFrame = packet.firstFrame + packet.tokens.numFrames;
      this.push({ type: 'tokens', publisher, packet, bytes: bytes.length, receivedAt: performance.now() });
      return;
    }
    const m = JSON.parse(data) as PublisherJoinedMessage | PublisherLeftMessage | ErrorMessage | DrainingMessage | ListenerClosedMessage;
    switch (m.type) {
      case 'publisher_joined':
        this.publishers.set(m.publisher.publisher, m.publisher);
        this.push({ type: 'publisher_joined', publisher: m.publisher });
        break;
      case 'publisher_left':
        this.publishers.delete(m.publisher);
        this.push({ type: 'publisher_left', publisher: m.publisher, frames: m.frames });
        break;
      case 'draining':
        this.push({ type: 'draining', closeInMs: m.closeInMs });
        break;
      case 'error':
        reportServerError(m, this.inbox, this.opts.onError);
        break;
    }
  }

  private onClose(code: number, reason: string): void {
    this.closeCode = code;
    clearInterval(this.keepalive);
    this.inbox.closed(code, reason);
    this.inbox.end();
  }
}

export const joinRoom = (opts: JoinOptions) => RoomSubscription.join(opts);
