import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import type { Counter } from 'prom-client';
import type { JoinedMessage, JoinMessage } from '../../protocol/rooms.js';
import type { ServerConfig } from '../config.js';
import { ProtocolError } from '../../protocol/errors.js';
import { parseControlMessage, parseJoin } from '../../protocol/parse.js';
import { drainingError, drainingNotice, toProtocolError } from '../stream/errors.js';
import { PeerSocket, reportCut } from '../stream/peer-socket.js';
import { mayAccess, type RoomAccess } from './grants.js';
import type { RoomRelay } from './relay.js';
import type { Room, RoomMetrics, RoomSubscriber } from './room.js';
import { flushAfterTurn, type RoomFrame, type TurnWriter } from './room-frame.js';

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
 * `bufferedAmount` alone. Once an eighth to a quarter of the limit is unconfirmed (drawProbeGap),
 * a ping carrying the running byte count goes out; the client's pong (WebSocket clients answer
 * pings on their own, in order with the data) confirms everything before it.
 *
 * Token frames go to the socket under ws, already framed (room-frame.ts), and the frames offered in
 * one event-loop turn share one write. This is sound because ws, with permessage-deflate off, writes
 * each of its own frames (events, pings, close) whole and at once, so frames never interleave;
 * pending frames are written before any of ws's, and none after ws has begun closing.
 */
export class RoomListener implements RoomSubscriber, TurnWriter {
  private state: 'waiting' | 'joining' | 'joined' | 'closing' | 'closed' = 'waiting';
  private room: Room | undefined;
  private errorCount = 0;
  private readonly peer: PeerSocket;
  private stalledSince: number | undefined;
  private bytesSent = 0;
  private bytesConfirmed = 0;
  private probing = false;
  private probeGap = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Packets sent and dropped (drops also in metrics); tests and logs read them. */
  sent = 0;
  dropped = 0;
  /** Frames (of all publishers) in the packets sent and dropped: `closed.frames` and `closed.dropped`. */
  framesSent = 0;
  framesDropped = 0;
  /** Code of the fatal error that ended this listener, if one did. */
  failure: string | undefined;

  /** `socket`: the connection under `ws` (the upgrade's socket). */
  constructor(readonly id: string, private readonly ws: WebSocket, private readonly socket: Duplex, private readonly access: RoomAccess, private readonly ctx: ListenerContext, private readonly onGone: (l: RoomListener) => void) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', () => this.cleanup());
    ws.on('error', (e) => ctx.log.debug({ listenerId: id, err: e.message }, 'websocket error'));
    ws.on('pong', (data: Buffer) => this.confirmed(data));
    this.peer = new PeerSocket(ws, ctx.config, (e) => this.fail(e), {
      onUnresponsive: () => this.fail(new ProtocolError('slow_consumer', `no pong for ${ctx.config.pingIntervalMs} ms: not reading (${this.queuedBytes} bytes unconfirmed)`)),
      onCut: reportCut(ctx.cuts, ctx.log, { listenerId: id }),
    });
    this.drawProbeGap();
  }

  /**
   * Unconfirmed bytes that trigger the next probe: an eighth to a quarter of the limit, drawn at
   * random. Listeners of one room receive the same bytes; with one fixed gap they would all ping
   * with the same packet, and that burst of pings and pongs delays the packets after it.
   */
  private drawProbeGap(): void {
    const max = this.ctx.config.roomMaxQueuedBytes;
    this.probeGap = (max / 8) * (1 + Math.random());
  }

  /** Bytes sent that the client has not confirmed reading (at least what the socket still holds), and those not written yet. */
  get queuedBytes(): number {
    return Math.max(this.bytesSent - this.bytesConfirmed, this.ws.bufferedAmount) + this.pendingBytes;
  }

  offer(frame: RoomFrame): void {
    if (this.state !== 'joined' || !this.peer.open) return;
    if (this.queuedBytes + frame.wire.length > this.ctx.config.roomMaxQueuedBytes) {
      this.dropped++;
      this.framesDropped += frame.frames;
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
    this.framesSent += frame.frames;
    if (this.pending.length === 0) flushAfterTurn(this);
    this.pending.push(frame.wire);
    this.pendingBytes += frame.wire.length;
  }

  /** Writes the frames offered so far (one write), then probes if enough is unconfirmed. */
  flush(): void {
    if (this.pending.length === 0) return;
    const out = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.peer.open || this.socket.destroyed) return; // closing: nothing may follow ws's close frame
    this.socket.write(out);
    this.bytesSent += out.length;
    if (!this.probing && this.bytesSent - this.bytesConfirmed >= this.probeGap) {
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
    this.drawProbeGap();
  }

  /** Events follow the token frames offered before them. */
  sendJson(m: object): void {
    this.flush();
    this.peer.sendJson(m);
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
    this.peer.armIdle();
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
    this.flush();
    this.state = 'closing';
    this.peer.close(code, reason);
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
    this.pending = [];
    this.pendingBytes = 0;
    this.peer.stop();
    this.onGone(this);
  }
}
