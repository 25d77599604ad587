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
import { EncodeStream, TokstreamError, type StreamOptions, type WebSocketCtor, type WebSocketLike } from './client.js';
import { KEY_PROTOCOL_PREFIX, PROTOCOL_V1, type ErrorMessage, type TokenPacket } from './protocol.js';
import {
  KIND_ROOM_TOKENS, decodeRoomPacket, type JoinedMessage, type PublishReadyFields, type PublisherInfo, type PublisherJoinedMessage,
  type PublisherLeftMessage,
} from './room-protocol.js';

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

export interface JoinOptions {
  /** ws(s)://host:port/v1/rooms/listen */
  url: string;
  room: string;
  apiKey?: string;
  keyVia?: 'header' | 'protocol' | 'query';
  WebSocket?: WebSocketCtor;
  keepaliveMs?: number;
  onError?: (e: TokstreamError) => void;
}

export type RoomEvent =
  | { type: 'tokens'; publisher: number; packet: TokenPacket; bytes: number; receivedAt: number }
  | { type: 'publisher_joined'; publisher: PublisherInfo }
  | { type: 'publisher_left'; publisher: number; frames: number };

const OPEN = 1;

/** A joined room: events in arrival order; ends when the socket closes (a fatal error is thrown). */
export class RoomSubscription implements AsyncIterable<RoomEvent> {
  readonly publishers = new Map<number, PublisherInfo>();
  /** Binary bytes received (bandwidth). */
  bytesReceived = 0;
  closeCode: number | undefined;
  private readonly queue: RoomEvent[] = [];
  private waiters: (() => void)[] = [];
  private failure: TokstreamError | undefined;
  private ended = false;
  private keepalive: ReturnType<typeof setInterval> | undefined;

  private constructor(private readonly ws: WebSocketLike, readonly joined: JoinedMessage, private readonly opts: JoinOptions) {
    for (const p of joined.publishers) this.publishers.set(p.publisher, p);
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => this.onClose(ev.code, ev.reason);
    const every = opts.keepaliveMs ?? 5000;
    if (every > 0) this.keepalive = setInterval(() => ws.readyState === OPEN && ws.send(JSON.stringify({ type: 'keepalive' })), every);
  }

  static async join(opts: JoinOptions): Promise<RoomSubscription> {
    const Ctor = opts.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!Ctor) throw new TokstreamError('no_websocket', 'no WebSocket implementation: pass { WebSocket } (e.g. from the "ws" package)', true);
    const keyVia = opts.keyVia ?? (opts.WebSocket ? 'header' : 'protocol');
    const url = new URL(opts.url);
    const protocols = [PROTOCOL_V1];
    const headers: Record<string, string> = {};
    if (opts.apiKey) {
      if (keyVia === 'query') url.searchParams.set('token', opts.apiKey);
      else if (keyVia === 'protocol') protocols.push(KEY_PROTOCOL_PREFIX + opts.apiKey);
      else headers.authorization = `Bearer ${opts.apiKey}`;
    }
    const ws = new Ctor(url.toString(), protocols, { headers });
    ws.binaryType = 'arraybuffer';
    const early: unknown[] = [];
    const joined = await new Promise<JoinedMessage>((resolve, reject) => {
      let lastError: ErrorMessage | undefined;
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', room: opts.room }));
      ws.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return void early.push(ev.data);
        const m = JSON.parse(ev.data) as JoinedMessage | ErrorMessage;
        if (m.type === 'joined') resolve(m);
        else if (m.type === 'error') {
          lastError = m;
          ws.close();
          reject(new TokstreamError(m.code, m.message, true));
        }
      };
      ws.onerror = () => undefined;
      ws.onclose = (ev) => reject(new TokstreamError(lastError?.code ?? 'connection_closed', lastError?.message ?? `connection closed (${ev.code}) before joined`, true, ev.code));
    });
    const sub = new RoomSubscription(ws, joined, opts);
    for (const d of early) sub.onMessage(d);
    return sub;
  }

  /** Leaves the room. */
  close(): void {
    if (this.ws.readyState === OPEN) this.ws.send(JSON.stringify({ type: 'close' }));
    clearInterval(this.keepalive);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RoomEvent> {
    for (;;) {
      if (this.queue.length > 0) {
        yield this.queue.shift()!;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  private push(e: RoomEvent): void {
    this.queue.push(e);
    for (const w of this.waiters.splice(0)) w();
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
    const m = JSON.parse(data) as PublisherJoinedMessage | PublisherLeftMessage | ErrorMessage | { type: 'closed' };
    switch (m.type) {
      case 'publisher_joined':
        this.publishers.set(m.publisher.publisher, m.publisher);
        this.push({ type: 'publisher_joined', publisher: m.publisher });
        break;
      case 'publisher_left':
        this.publishers.delete(m.publisher);
        this.push({ type: 'publisher_left', publisher: m.publisher, frames: m.frames });
        break;
      case 'error': {
        const e = new TokstreamError(m.code, m.message, m.fatal);
        if (m.fatal) this.failure = e;
        else this.opts.onError?.(e);
        break;
      }
    }
  }

  private onClose(code: number, reason: string): void {
    this.closeCode = code;
    clearInterval(this.keepalive);
    if (code !== 1000 && !this.failure) this.failure = new TokstreamError('connection_closed', `connection closed (${code}${reason ? ` ${reason}` : ''})`, true, code);
    else if (this.failure && this.failure.closeCode === undefined) this.failure = new TokstreamError(this.failure.code, this.failure.message, true, code);
    this.ended = true;
    for (const w of this.waiters.splice(0)) w();
  }
}

export const joinRoom = (opts: JoinOptions) => RoomSubscription.join(opts);
