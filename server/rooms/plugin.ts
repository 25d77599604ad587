import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { ROOMS_LISTEN_PATH, ROOMS_PUBLISH_PATH } from '../../protocol/rooms.js';
import { selectProtocol } from '../auth.js';
import { StreamConnection } from '../stream/connection.js';
import { ProtocolError } from '../../protocol/errors.js';
import { drainingError } from '../stream/errors.js';
import { registerDecoderAssets } from './decoder-assets.js';
import { registerRoomDemo } from './demo-pages.js';
import { RoomAuth, type RoomAccess } from './grants.js';
import { RoomListener } from './listener.js';
import { RedisRelay } from './redis-relay.js';
import { LocalRelay, type RoomRelay } from './relay.js';
import { PublisherTap } from './publisher.js';
import { RoomRegistry, roomMetrics } from './room.js';

/** What tests and the benchmark inspect. */
export interface RoomsService {
  registry: RoomRegistry;
  /** How rooms reach other nodes (LocalRelay without --redis-url). */
  relay: RoomRelay;
  publishers: ReadonlySet<StreamConnection>;
  listeners: ReadonlySet<RoomListener>;
}

declare module 'fastify' {
  interface FastifyInstance {
    rooms: RoomsService;
  }
}

/**
 * Voice-chat rooms (docs/protocol.md, "Rooms"): `/v1/rooms/publish` runs an ordinary encode stream
 * (the same StreamConnection as /v1/stream) whose token packets are also relayed to the room;
 * `/v1/rooms/listen` joins a room and receives those packets, never audio. Also serves what a
 * client needs to decode locally (decoder graphs, onnxruntime-web) and, with --demo, the room pages.
 */
export async function registerRooms(app: FastifyInstance): Promise<void> {
  const { config, batchers, defaultModel, metrics, auth, streams, registry: models, drain } = app.tokstream;
  const registry = new RoomRegistry();
  const rmetrics = roomMetrics(metrics.registry);
  const roomAuth = new RoomAuth(auth, config.roomKeys);
  const relay: RoomRelay = config.redisUrl
    ? await RedisRelay.connect({
      url: config.redisUrl, heartbeatMs: config.redisHeartbeatMs, registry, metrics: rmetrics, maxListeners: config.maxRoomListeners,
      grants: roomAuth.shareable, onGrants: (all) => roomAuth.useShared(all), log: app.log,
    })
    : new LocalRelay(registry);
  const publishers = new Set<StreamConnection>();
  const listeners = new Set<RoomListener>();
  let shuttingDown = false;
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes * 4, handleProtocols: (p) => selectProtocol(p), perMessageDeflate: false });
  const streamCtx = { config, batchers, defaultModel, metrics, log: app.log, drain };
  const listenerCtx = { config, relay, metrics: rmetrics, cuts: metrics.cut, log: app.log };

  function refuse(ws: WebSocket, err: ProtocolError): void {
    metrics.refused.inc({ reason: err.code });
    ws.send(JSON.stringify({ type: 'error', code: err.code, message: err.message, fatal: true }));
    ws.close(err.closeCode, err.code);
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  function admit(ws: WebSocket, req: IncomingMessage): RoomAccess | undefined {
    if (shuttingDown) return void refuse(ws, new ProtocolError('shutting_down', 'server is shutting down'));
    if (drain.draining) return void refuse(ws, drainingError());
    const result = roomAuth.check(req.headers, new URL(req.url ?? '/', 'http://local').searchParams);
    if ('failure' in result) return void refuse(ws, new ProtocolError(result.failure.code, result.failure.message));
    return result.access;
  }

  streams.addUpgradeRoute(ROOMS_PUBLISH_PATH, (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => {
    const access = admit(ws, req);
    if (!access) return;
    // publishers run the model: they are bounded like streams (counted apart from /v1/stream)
    if (publishers.size >= config.maxStreams) return refuse(ws, new ProtocolError('too_many_streams', `all ${config.maxStreams} publisher slots are in use; try later`));
    const id = `s-${randomBytes(6).toString('hex')}`;
    const conn = new StreamConnection(id, ws, streamCtx, (c) => publishers.delete(c), new PublisherTap({ relay, metrics: rmetrics, maxPublishers: config.maxRoomPublishers }, access, id));
    publishers.add(conn);
  }));

  streams.addUpgradeRoute(ROOMS_LISTEN_PATH, (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => {
    const access = admit(ws, req);
    if (!access) return;
    if (listeners.size >= config.maxRoomListeners) return refuse(ws, new ProtocolError('too_many_streams', `all ${config.maxRoomListeners} listener slots are in use; try later`));
    const listener = new RoomListener(`l-${randomBytes(6).toString('hex')}`, ws, access, listenerCtx, (l) => {
      listeners.delete(l);
      rmetrics.listeners.set(listeners.size);
    });
    listeners.add(listener);
    rmetrics.listeners.set(listeners.size);
  }));

  registerDecoderAssets(app, models, roomAuth);
  if (config.demo) registerRoomDemo(app);
  app.decorate('rooms', { registry, relay, publishers, listeners });
  // a drain waits for publishers (they run the model); listeners only hear of it and are closed with the server
  drain.track('publishers', () => publishers.size);
  drain.onBegin((closeInMs) => {
    for (const c of publishers) c.drainBegun(closeInMs);
    for (const l of listeners) l.drainBegun(closeInMs);
  });

  app.addHook('preClose', async () => {
    shuttingDown = true;
    const bye = new ProtocolError('shutting_down', 'server is shutting down');
    for (const c of publishers) c.fail(bye);
    for (const l of listeners) l.fail(bye);
    const deadline = Date.now() + 3000;
    while (publishers.size + listeners.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    await relay.close();
  });
}
