import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import { ROOM_NAME, type JoinedMessage } from '../../clients/ts/room-protocol.js';
import type { ServerConfig } from '../config.js';
import { StreamError, toStreamError } from '../stream/errors.js';
import { PeerSocket, parseControlMessage } from '../stream/peer-socket.js';
import { mayAccess, type RoomAccess } from './grants.js';
import type { RoomRelay } from './relay.js';
import type { Room, RoomMetrics, RoomSubscriber } from './room.js';

export interface ListenerContext {
  config: ServerConfig;
  relay: RoomRelay;
  metrics: RoomMetrics;
  log: FastifyBaseLogger;
}

/**
 * One listener connection: `join` one room, then receive kind-16 token frames and publisher
 * events. Slow-subscriber policy: a frame that would take the bytes queued towards this client
 * over `roomMaxQueuedBytes` is dropped (the frame indices show the gap); a client that has had
 * every frame dropped for `roomStallMs` is closed with `slow_consumer`. Publishers and other
 * listeners never wait for it.
 */
export class RoomListener implements RoomSubscriber {
  private state: 'waiting' | 'joining' | 'joined' | 'closing' | 'closed' = 'waiting';
  private room: Room | undefined;
  private errorCount = 0;
  private readonly socket: PeerSocket;
  private stalledSince: number | undefined;
  /** Frames sent and dropped (also in metrics); tests and logs read them. */
  sent = 0;
  dropped = 0;
  /** Code of the fatal error that ended this listener, if one did. */
  failure: string | undefined;

  constructor(readonly id: string, private readonly ws: WebSocket, private readonly access: RoomAccess, private readonly ctx: ListenerContext, private readonly onGone: (l: RoomListener) => void) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', () => this.cleanup());
    ws.on('error', (e) => ctx.log.debug({ listenerId: id, err: e.message }, 'websocket error'));
    this.socket = new PeerSocket(ws, ctx.config, (e) => this.fail(e));
  }

  offer(frame: Uint8Array): void {
    if (this.state !== 'joined' || !this.socket.open) return;
    if (this.ws.bufferedAmount + frame.length > this.ctx.config.roomMaxQueuedBytes) {
      this.dropped++;
      this.ctx.metrics.dropped.inc();
      const now = performance.now();
      this.stalledSince ??= now;
      if (now - this.stalledSince > this.ctx.config.roomStallMs) {
        this.fail(new StreamError('slow_consumer', `every packet dropped for ${this.ctx.config.roomStallMs} ms: ${this.ws.bufferedAmount} bytes still queued`));
      }
      return;
    }
    this.stalledSince = undefined;
    this.sent++;
    this.ws.send(frame, { binary: true });
  }

  sendJson(m: object): void {
    this.socket.sendJson(m);
  }

  fail(err: StreamError): void {
    if (this.state === 'closed') return;
    this.sendJson({ type: 'error', code: err.code, message: err.message, fatal: err.fatal });
    if (err.fatal) {
      this.failure = err.code;
      this.ctx.log.info({ listenerId: this.id, code: err.code }, `room listener ended: ${err.message}`);
      this.closeSocket(err.closeCode ?? 4000, err.code);
    } else if (++this.errorCount >= this.ctx.config.maxProtocolErrors) {
      this.fail(new StreamError('too_many_errors', `${this.errorCount} refused messages`));
    }
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.socket.armIdle();
    try {
      this.handle(data, isBinary);
    } catch (e) {
      this.fail(e instanceof StreamError ? e : new StreamError('internal', (e as Error).message));
    }
  }

  private handle(data: Buffer, isBinary: boolean): void {
    if (isBinary) throw new StreamError('bad_frame', 'listeners send no binary frames');
    const m = parseControlMessage(data, this.ctx.config.maxTextBytes);
    switch (m.type) {
      case 'join':
        return this.join(m);
      case 'keepalive':
        return;
      case 'close':
        this.sendJson({ type: 'closed', frames: this.sent, dropped: this.dropped });
        return this.closeSocket(1000, 'closed');
      default:
        throw new StreamError('unknown_type', `unknown message type ${JSON.stringify(m.type)}`);
    }
  }

  private join(m: Record<string, unknown>): void {
    if (this.state !== 'waiting') throw new StreamError('already_started', 'already joined a room (one room per connection)');
    const name = m.room;
    if (typeof name !== 'string' || !ROOM_NAME.test(name)) throw new StreamError('bad_message', 'room must be 1-64 characters of [A-Za-z0-9._-]');
    if (!mayAccess(this.access, name, 'listen')) throw new StreamError('unauthorized', `this key may not listen to room "${name}"`);
    this.state = 'joining';
    const room = this.ctx.relay.join(name);
    if (room instanceof Promise) room.then((r) => this.joined(r), (e) => this.fail(toStreamError(e)));
    else this.joined(room);
  }

  private joined(room: Room): void {
    if (this.state !== 'joining') return this.ctx.relay.leave(room, this); // closed while the relay was asked
    this.room = room;
    this.state = 'joined';
    room.subscribers.add(this);
    const name = room.name;
    const { config } = this.ctx;
    const joined: JoinedMessage = {
      type: 'joined', room: name, subscriberId: this.id, publishers: [...room.publishers.values()],
      limits: { maxQueuedBytes: config.roomMaxQueuedBytes, stallMs: config.roomStallMs, idleTimeoutMs: config.idleTimeoutMs },
    };
    this.sendJson(joined);
    this.ctx.log.info({ listenerId: this.id, room: name }, 'room listener joined');
  }

  private closeSocket(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.leave();
    this.state = 'closing';
    this.socket.close(code, reason);
  }

  private leave(): void {
    const room = this.room;
    if (!room) return;
    this.room = undefined;
    this.ctx.relay.leave(room, this);
  }

  private cleanup(): void {
    if (this.state === 'closed') return;
    this.leave();
    this.state = 'closed';
    this.socket.stop();
    this.onGone(this);
  }
}
