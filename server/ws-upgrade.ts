import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { ProtocolError } from '../protocol/errors.js';
import { selectProtocol } from './auth.js';
import type { Drain } from './drain.js';
import type { ServerMetrics } from './metrics.js';
import { drainingError } from './stream/errors.js';

/** A server-side WebSocket peer (a stream, a room listener) as shutdown and drain see it. */
export interface SocketPeer {
  fail(err: ProtocolError): void;
  drainBegun(closeInMs: number): void;
}

/** Takes a socket the server did not refuse as a whole (its endpoint may still refuse it). */
export type AcceptSocket = (ws: WebSocket, req: IncomingMessage) => void;

/** How long shutdown lets peers finish their closing handshake before their sockets are cut. */
const SHUTDOWN_GRACE_MS = 3000;

/**
 * The server's WebSocket endpoints (/v1/stream, the rooms paths): one `ws` server in noServer mode
 * on fastify's HTTP server, routed by path. Sockets are accepted before any refusal, which is a
 * typed error then a close (browsers can read close codes, not handshake statuses); while the
 * server drains or closes every endpoint refuses new sockets alike.
 */
export class WebSocketUpgrades {
  private readonly wss: WebSocketServer;
  private readonly routes = new Map<string, AcceptSocket>();
  private readonly peers: ReadonlySet<SocketPeer>[] = [];

  constructor(private readonly deps: { maxFrameBytes: number; metrics: ServerMetrics; log: FastifyBaseLogger; drain: Drain }) {
    this.wss = new WebSocketServer({
      noServer: true,
      // up to 4x the handled limit still arrives and gets a typed error; beyond it ws closes with 1009
      maxPayload: deps.maxFrameBytes * 4,
      handleProtocols: (protocols) => selectProtocol(protocols),
      perMessageDeflate: false,
    });
    deps.drain.onBegin((closeInMs) => {
      for (const set of this.peers) for (const peer of set) peer.drainBegun(closeInMs);
    });
  }

  /** Serves WebSocket upgrades on `path`. */
  route(path: string, accept: AcceptSocket): void {
    if (this.routes.has(path)) throw new Error(`WebSocket path ${path} already registered`);
    this.routes.set(path, accept);
  }

  /** Open peers of an endpoint: a drain tells them, shutdown closes them. */
  track(peers: ReadonlySet<SocketPeer>): void {
    this.peers.push(peers);
  }

  /** Tells the client why with a fatal error and closes the socket. */
  refuse(ws: WebSocket, req: IncomingMessage, err: ProtocolError): void {
    const { metrics, log } = this.deps;
    metrics.refused.inc({ reason: err.code });
    metrics.errors.inc({ code: err.code });
    log.info({ path: pathOf(req), code: err.code, ip: req.socket.remoteAddress }, `connection refused: ${err.message}`);
    ws.send(JSON.stringify({ type: 'error', code: err.code, message: err.message, fatal: true }));
    ws.close(err.closeCode, err.code);
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  /** Listener for the HTTP server's `upgrade` event. */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const accept = this.routes.get(pathOf(req));
    if (!accept) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const { drain } = this.deps;
      if (drain.closing) return this.refuse(ws, req, new ProtocolError('shutting_down', 'server is shutting down'));
      if (drain.draining) return this.refuse(ws, req, drainingError());
      accept(ws, req);
    });
  };

  /** Ends every open peer with `shutting_down` (1001), waits briefly for them to go, then cuts what is left. */
  async shutdown(): Promise<void> {
    const bye = new ProtocolError('shutting_down', 'server is shutting down');
    for (const set of this.peers) for (const peer of set) peer.fail(bye);
    const open = () => this.peers.reduce((n, set) => n + set.size, 0);
    const deadline = Date.now() + SHUTDOWN_GRACE_MS;
    while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://local').pathname;
}
