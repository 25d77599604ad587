import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { Authenticator, selectProtocol } from '../auth.js';
import type { Drain } from '../drain.js';
import { StreamConnection, type StreamContext } from './connection.js';
import { ProtocolError } from '../../protocol/errors.js';
import { drainingError } from './errors.js';

export const STREAM_PATH = '/v1/stream';

/** Routes HTTP upgrades by path, so other WebSocket endpoints (rooms) can share the server. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface StreamEndpoint {
  /** Open stream connections (slots in use). */
  readonly connections: ReadonlySet<StreamConnection>;
  /** Registers another WebSocket path on the same server. */
  addUpgradeRoute(path: string, handler: UpgradeHandler): void;
}

/**
 * The WebSocket stream endpoint: `ws` in noServer mode on fastify's HTTP server. Connections
 * beyond `maxStreams`, without a valid key or from a foreign origin are accepted, told why with a
 * typed error and closed (browsers can read close codes, not handshake statuses).
 */
export function registerStreamEndpoint(app: FastifyInstance, ctx: StreamContext & { drain: Drain }, auth: Authenticator): StreamEndpoint {
  const { config, metrics, drain } = ctx;
  const connections = new Set<StreamConnection>();
  const routes = new Map<string, UpgradeHandler>();
  let shuttingDown = false;
  const wss = new WebSocketServer({
    noServer: true,
    // up to 4x the handled limit still arrives and gets a typed error; beyond it ws closes with 1009
    maxPayload: config.maxFrameBytes * 4,
    handleProtocols: (protocols) => selectProtocol(protocols),
    perMessageDeflate: false,
  });

  routes.set(STREAM_PATH, (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, req));
  });

  function accept(ws: WebSocket, req: IncomingMessage): void {
    const id = `s-${randomBytes(6).toString('hex')}`;
    const refuse = (err: ProtocolError, reason: string) => {
      metrics.refused.inc({ reason });
      metrics.errors.inc({ code: err.code });
      ctx.log.info({ streamId: id, code: err.code, ip: req.socket.remoteAddress }, `stream refused: ${err.message}`);
      ws.send(JSON.stringify({ type: 'error', code: err.code, message: err.message, fatal: true }));
      ws.close(err.closeCode, err.code);
      setTimeout(() => ws.terminate(), 2000).unref();
    };
    if (shuttingDown) return refuse(new ProtocolError('shutting_down', 'server is shutting down'), 'shutting_down');
    if (drain.draining) return refuse(drainingError(), 'draining');
    const failure = auth.check(req.headers, new URL(req.url ?? '/', 'http://local').searchParams);
    if (failure) return refuse(new ProtocolError(failure.code, failure.message), failure.code);
    if (connections.size >= config.maxStreams) {
      return refuse(new ProtocolError('too_many_streams', `all ${config.maxStreams} stream slots are in use; try later`), 'too_many_streams');
    }
    const conn = new StreamConnection(id, ws, ctx, (c) => {
      connections.delete(c);
      metrics.connections.set(connections.size);
    });
    connections.add(conn);
    metrics.connections.set(connections.size);
  }

  drain.track('streams', () => connections.size);
  drain.onBegin((closeInMs) => {
    for (const c of connections) c.drainBegun(closeInMs);
  });

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://local').pathname;
    const handler = routes.get(path);
    if (handler) return handler(req, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  app.addHook('preClose', async () => {
    shuttingDown = true;
    for (const c of connections) c.fail(new ProtocolError('shutting_down', 'server is shutting down'));
    const deadline = Date.now() + 3000;
    while (connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  });

  return {
    connections,
    addUpgradeRoute: (path, handler) => {
      if (routes.has(path)) throw new Error(`WebSocket path ${path} already registered`);
      routes.set(path, handler);
    },
  };
}
