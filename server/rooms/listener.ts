import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import type { Counter } from 'prom-client';
import { ROOM_TOKENS_HEADER, type JoinedMessage, type JoinMessage } from '../../protocol/rooms.js';
import type { ServerConfig } from '../config.js';
import { ProtocolError } from '../../protocol/errors.js';
import { parseControlMessage, parseJoin } from '../../protocol/parse.js';
import { drainingError, drainingNotice, toProtocolError } from '../stream/errors.js';
import { PeerSocket, reportCut } from '../stream/peer-socket.js';
import { mayAccess, type RoomAccess } from './grants.js';
import type { RoomRelay } from './relay.js';
import type { Room, RoomMetrics, RoomSubscriber } from './room.js';

export interface ListenerContext {
  config: ServerConfig;
  relay: RoomRelay;
  metrics: RoomMetrics;
  /** tokstream_ws_cut_total (server/metrics.ts). */
  cuts: Counter<'reason'>;
  log: FastifyBaseLogger;
}

/** Ping payloads that ask the listener to confirm what it has read: `q<bytes sent before the ping>`. */
const PROBE_PREFIX = 'q';

/**
 * One listener connection: `join` one room, then receive kind-16 token frames and publisher
 * events. Slow-subscriber policy (docs/protocol.md §10.5): a frame that would take the bytes
 * queued towards this client over `roomMaxQueuedBytes` is dropped (the frame indices show the
 * gap); a client that has had every frame dropped for `roomStallMs`, or has answered no ping for a
 * ping interval, is closed with `slow_consumer`. Publishers and other listeners never wait for it.
 *
 * Queued bytes are the bytes sent that the client has not confirmed reading, ws's own send queue
 * included: the kernel's socket buffers (megabytes on loopback) hide a stalled reader from
 * `bufferedAmount` alone. Once that many bytes are unconfirmed, a ping carrying the running byte
 * count goes out; the client's pong (WebSocket clients answer pings on their own, in order with
 * the data) confirms everything before it.
 */
export class RoomListener implements RoomSubscriber {
  private state: 'waiting' | 'joining' | 'joined' | 'closing' | 'closed' = 'waiting';
  private room: Room | undefined;
  private errorCount = 0;
  private readonly socket: PeerSocket;
  private stalledSince: number | undefined;
  private bytesSent = 0;
  private bytesConfirmed = 0;
  private probing = false;
  /** Packets sent and dropped (drops also in metrics); tests and logs read them. */
  sent = 0;
  dropped = 0;
  /** Frames (of all publishers) in the packets sent and dropped: `closed.frames` and `closed.dropped`. */
  framesSent = 0;
  framesDropped = 0;
  /** Code of the fatal error that ended this listener, if one did. */
  failure: string | undefined;

  constructor(readonly id: string, private readonly ws: WebSocket, private readonly access: RoomAccess, private readonly ctx: ListenerContext, private readonly onGone: (l: RoomListener) => void) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', () => this.cleanup());
    ws.on('error', (e) => ctx.log.debug({ listenerId: id, err: e.message }, 'websocket error'));
    ws.on('pong', (data: Buffer) => this.confirmed(data));
    this.socket = new PeerSocket(ws, ctx.config, (e) => this.fail(e), {
      onUnresponsive: () => this.fail(new ProtocolError('slow_consumer', `no pong for ${ctx.config.pingIntervalMs} ms: not reading (${this.queuedBytes} bytes unconfirmed)`)),
      onCut: reportCut(ctx.cuts, ctx.log, { listenerId: id }),
    });
  }

  /** Bytes sent that the client has not confirmed reading (at least what ws still holds). */
  get queuedBytes(): number {
    return Math.max(this.bytesSent - this.bytesConfirmed, this.ws.bufferedAmount);
  }

  offer(frame: Uint8Array): void {
    if (this.state !== 'joined' || !this.socket.open) return;
    const frames = roomFrameCount(frame);
    if (this.queuedBytes + frame.length > this.ctx.config.roomMaxQueuedBytes) {
      this.dropped++;
      this.framesDropped += frames;
      this.ctx.metrics.dropped.inc();
      const now = performance.now();
      this.stalledSince ??= now;
      if (now - this.stalledSince > this.ctx.config.roomStallMs) {
        this.fail(new ProtocolError('slow_consumer', `every packet dropped for ${this.ctx.config.roomStallMs} ms: ${this.queuedBytes} bytes unconfirmed`));
      }
      return;
    }
    this.stalledSince = undefined;
    this.sent++;
    this.framesSent += frames;
    this.bytesSent += frame.length;
    this.ws.send(frame, { binary: true });
    if (!this.probing && this.bytesSent - this.bytesConfirmed >= this.ctx.config.roomMaxQueuedBytes / 4) {
      this.probing = true;
      this.ws.ping(PROBE_PREFIX + this.bytesSent);
    }
  }

  private confirmed(pong: Buffer): void {
    const text = pong.toString('latin1');
    if (!text.startsWith(PROBE_PREFIX)) return; // a liveness ping's pong
    const upTo = Number(text.slice(PROBE_PREFIX.length));
    if (!Number.isSafeInteger(upTo)) return;
    this.bytesConfirmed = Math.max(this.bytesConfirmed, Math.min(upTo, this.bytesSent));
    this.probing = false;
  }

  sendJson(m: object): void {
    this.socket.sendJson(m);
  }

  /** The server began to drain: refuse a connection that has not joined, tell a joined one. */
  drainBegun(closeInMs: number): void {
    if (this.state === 'waiting' || this.state === 'joining') this.fail(drainingError());
    else if (this.state === 'joined') this.sendJson(drainingNotice(closeInMs));
  }

  fail(err: ProtocolError): void {
    if (this.state === 'closed') return;
    this.sendJson({ type: 'error', code: err.code, message: err.message, fatal: err.fatal });
    if (err.fatal) {
      this.failure = err.code;
      if (err.code === 'slow_consumer') this.ctx.metrics.slowListeners.inc();
      this.ctx.log.info({ listenerId: this.id, code: err.code, queuedBytes: this.queuedBytes, packetsDropped: this.dropped }, `room listener ended: ${err.message}`);
      this.closeSocket(err.closeCode ?? 4000, err.code);
    } else if (++this.errorCount >= this.ctx.config.maxProtocolErrors) {
      this.fail(new ProtocolError('too_many_errors', `${this.errorCount} refused messages`));
    }
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.socket.armIdle();
    try {
      this.handle(data, isBinary);
    } catch (e) {
      this.fail(e instanceof ProtocolError ? e : new ProtocolError('internal', (e as Error).message));
    }
  }

  private handle(data: Buffer, isBinary: boolean): void {
    if (isBinary) throw new ProtocolError('bad_frame', 'listeners send no binary frames');
    const m = parseControlMessage(data, this.ctx.config.maxTextBytes);
    switch (m.type) {
      case 'join':
        if (this.state !== 'waiting') throw new ProtocolError('already_started', 'already joined a room (one room per connection)');
        return this.join(parseJoin(m));
      case 'keepalive':
        return;
      case 'close':
        this.sendJson({ type: 'closed', frames: this.framesSent, dropped: this.framesDropped, packets: this.sent, packetsDropped: this.dropped });
        return this.closeSocket(1000, 'closed');
      default:
        throw new ProtocolError('unknown_type', `unknown message type ${JSON.stringify(m.type)}`);
    }
  }

  private join({ room: name }: JoinMessage): void {
    if (!mayAccess(this.access, name, 'listen')) throw new ProtocolError('unauthorized', `this key may not listen to room "${name}"`);
    this.state = 'joining';
    const room = this.ctx.relay.join(name);
    if (room instanceof Promise) room.then((r) => this.joined(r), (e) => this.fail(toProtocolError(e)));
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

/** Frame count F of the kind-2 packet inside a kind-16 frame (header offset 12 of the packet). */
function roomFrameCount(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(ROOM_TOKENS_HEADER + 12, true);
}
