import type { FastifyBaseLogger } from 'fastify';
import type { Counter } from 'prom-client';
import type { WebSocket } from 'ws';
import type { ServerConfig } from '../config.js';
import { ProtocolError } from '../../protocol/errors.js';

/** Time to let a closing handshake finish before the socket is cut (a client that does not read never answers). */
const CLOSE_GRACE_MS = 2000;

export interface PeerEvents {
  /** Nothing came back for a ping interval (no pong). Default: cut the connection as `no_pong`. */
  onUnresponsive?: () => void;
  /**
   * The connection was cut without a completed close handshake, so the peer sees 1006 and never
   * read the typed error (a client that does not read, or a dead network). `reason`: the error code
   * whose close went unanswered, or `no_pong`.
   */
  onCut?: (reason: string, queuedBytes: number) => void;
}

/**
 * The socket upkeep every server-side peer (stream or room listener) needs: ping/pong liveness,
 * an idle timeout re-armed by each message, JSON sends that skip a socket no longer open, and a
 * close that cuts a peer which never finishes the handshake. `stop()` clears the timers.
 */
export class PeerSocket {
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly pingTimer: NodeJS.Timeout;
  private killTimer: NodeJS.Timeout | undefined;
  private alive = true;

  constructor(
    private readonly ws: WebSocket,
    private readonly config: Pick<ServerConfig, 'pingIntervalMs' | 'idleTimeoutMs'>,
    private readonly onIdle: (e: ProtocolError) => void,
    private readonly events: PeerEvents = {},
  ) {
    ws.on('pong', () => (this.alive = true));
    this.armIdle();
    this.pingTimer = setInterval(() => this.ping(), config.pingIntervalMs);
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Restarts the idle countdown (on every message received). */
  armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.onIdle(new ProtocolError('idle_timeout', `no message for ${this.config.idleTimeoutMs} ms`)), this.config.idleTimeoutMs);
  }

  sendJson(m: object): void {
    if (this.open) this.ws.send(JSON.stringify(m));
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason);
    this.killTimer ??= setTimeout(() => this.cut(reason), CLOSE_GRACE_MS);
    this.killTimer.unref?.();
  }

  /** Drops the connection at once (no close handshake: the peer sees 1006). */
  cut(reason: string): void {
    if (this.ws.readyState === this.ws.CLOSED) return;
    this.events.onCut?.(reason, this.ws.bufferedAmount);
    this.ws.terminate();
  }

  stop(): void {
    clearTimeout(this.idleTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.killTimer);
  }

  private ping(): void {
    if (this.killTimer) return; // closing already
    if (!this.alive) {
      // the peer stopped answering pings: it does not read, or the network is gone
      if (this.events.onUnresponsive) this.events.onUnresponsive();
      else this.cut('no_pong');
      return;
    }
    this.alive = false;
    if (this.open) this.ws.ping();
  }
}

/** PeerEvents.onCut for a server peer: counted in `tokstream_ws_cut_total` and logged (the client never saw why). */
export function reportCut(counter: Counter<'reason'>, log: FastifyBaseLogger, peer: Record<string, string>): NonNullable<PeerEvents['onCut']> {
  return (reason, queuedBytes) => {
    counter.inc({ reason });
    log.info({ ...peer, reason, queuedBytes }, `connection cut without close handshake (${reason}): the client sees 1006`);
  };
}
