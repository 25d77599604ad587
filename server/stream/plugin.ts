import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ProtocolError } from '../../protocol/errors.js';
import { StreamConnection, type StreamContext } from './connection.js';

export const STREAM_PATH = '/v1/stream';

/**
 * The WebSocket stream endpoint (docs/protocol.md). Connections without a valid key, from a
 * foreign origin or beyond `maxStreams` are refused with a typed error (server/ws-upgrade.ts).
 */
export async function streamPlugin(app: FastifyInstance): Promise<void> {
  const { config, batchers, defaultModel, metrics, auth, drain, sockets, streams } = app.tokstream;
  const { connections } = streams;
  const ctx: StreamContext = { config, batchers, defaultModel, metrics, log: app.log, drain };

  sockets.route(STREAM_PATH, (ws, req) => {
    const failure = auth.check(req.headers, new URL(req.url ?? '/', 'http://local').searchParams);
    if (failure) return sockets.refuse(ws, req, new ProtocolError(failure.code, failure.message));
    if (connections.size >= config.maxStreams) {
      return sockets.refuse(ws, req, new ProtocolError('too_many_streams', `all ${config.maxStreams} stream slots are in use; try later`));
    }
    const conn = new StreamConnection(`s-${randomBytes(6).toString('hex')}`, ws, ctx, (c) => {
      connections.delete(c);
      metrics.connections.set(connections.size);
    });
    connections.add(conn);
    metrics.connections.set(connections.size);
  });
  sockets.track(connections);
  drain.track('streams', () => connections.size);
}
