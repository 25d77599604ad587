import type { WebSocket } from 'ws';
import type { ServerConfig } from '../config.js';
import { StreamError } from './errors.js';

/** Time to let a closing handshake finish before the socket is cut (a client that does not read never answers). */
const CLOSE_GRACE_MS = 2000;

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

  constructor(private readonly ws: WebSocket, private readonly config: Pick<ServerConfig, 'pingIntervalMs' | 'idleTimeoutMs'>, private readonly onIdle: (e: StreamError) => void) {
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
    this.idleTimer = setTimeout(() => this.onIdle(new StreamError('idle_timeout', `no message for ${this.config.idleTimeoutMs} ms`)), this.config.idleTimeoutMs);
  }

  sendJson(m: object): void {
    if (this.open) this.ws.send(JSON.stringify(m));
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason);
    this.killTimer ??= setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    this.killTimer.unref?.();
  }

  stop(): void {
    clearTimeout(this.idleTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.killTimer);
  }

  private ping(): void {
    if (!this.alive) {
      this.ws.terminate(); // the peer stopped answering pings: the network is gone
      return;
    }
    this.alive = false;
    if (this.open) this.ws.ping();
  }
}

/** Parses a text frame into a control message object, refusing oversized and non-object ones. */
export function parseControlMessage(data: Buffer, maxTextBytes: number): Record<string, unknown> {
  if (data.length > maxTextBytes) throw new StreamError('frame_too_large', `control message of ${data.length} bytes (limit ${maxTextBytes})`);
  let msg: unknown;
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch {
    throw new StreamError('bad_json', 'text frame is not JSON');
  }
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new StreamError('bad_json', 'control message must be a JSON object');
  return msg as Record<string, unknown>;
}
