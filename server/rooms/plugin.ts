import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { ProtocolError } from '../../protocol/errors.js';
import { ROOMS_LISTEN_PATH, ROOMS_PUBLISH_PATH } from '../../protocol/rooms.js';
import { StreamConnection } from '../stream/connection.js';
import { registerDecoderAssets } from './decoder-assets.js';
import type { RoomAccess } from './grants.js';
import { RoomListener } from './listener.js';
import { PublisherTap } from './publisher.js';

/**
 * Voice-chat rooms (docs/protocol.md, "Rooms"): `/v1/rooms/publish` runs an ordinary encode stream
 * (the same StreamConnection as /v1/stream) whose token packets are also relayed to the room;
 * `/v1/rooms/listen` joins a room and receives those packets, never audio. Also serves what a
 * client needs to decode locally (decoder graphs, onnxruntime-web).
 */
export async function roomsPlugin(app: FastifyInstance): Promise<void> {
  const { config, batchers, defaultModel, metrics, registry: models, drain, sockets, rooms } = app.tokstream;
  const { relay, publishers, listeners, auth: roomAuth, metrics: rmetrics } = rooms;
  const streamCtx = { config, batchers, defaultModel, metrics, log: app.log, drain };
  const listenerCtx = { config, relay, metrics: rmetrics, cuts: metrics.cut, log: app.log };

  function admit(ws: WebSocket, req: IncomingMessage): RoomAccess | undefined {
    const result = roomAuth.check(req.headers, new URL(req.url ?? '/', 'http://local').searchParams);
    if ('failure' in result) return void sockets.refuse(ws, req, new ProtocolError(result.failure.code, result.failure.message));
    return result.access;
  }

  sockets.route(ROOMS_PUBLISH_PATH, (ws, req) => {
    const access = admit(ws, req);
    if (!access) return;
    // publishers run the model: they are bounded like streams (counted apart from /v1/stream)
    if (publishers.size >= config.maxStreams) {
      return sockets.refuse(ws, req, new ProtocolError('too_many_streams', `all ${config.maxStreams} publisher slots are in use; try later`));
    }
    const id = `s-${randomBytes(6).toString('hex')}`;
    const tap = new PublisherTap({ relay, metrics: rmetrics, maxPublishers: config.maxRoomPublishers }, access, id);
    publishers.add(new StreamConnection(id, ws, streamCtx, (c) => publishers.delete(c), tap));
  });

  sockets.route(ROOMS_LISTEN_PATH, (ws, req) => {
    const access = admit(ws, req);
    if (!access) return;
    if (listeners.size >= config.maxRoomListeners) {
      return sockets.refuse(ws, req, new ProtocolError('too_many_streams', `all ${config.maxRoomListeners} listener slots are in use; try later`));
    }
    const listener = new RoomListener(`l-${randomBytes(6).toString('hex')}`, ws, req.socket, access, listenerCtx, (l) => {
      listeners.delete(l);
      rmetrics.listeners.set(listeners.size);
    });
    listeners.add(listener);
    rmetrics.listeners.set(listeners.size);
  });

  // a drain waits for publishers (they run the model); listeners only hear of it and are closed with the server
  sockets.track(publishers);
  sockets.track(listeners);
  drain.track('publishers', () => publishers.size);
  registerDecoderAssets(app, models, roomAuth);
}
