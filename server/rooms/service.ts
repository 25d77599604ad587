import type { FastifyBaseLogger } from 'fastify';
import type { Authenticator } from '../auth.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics.js';
import type { StreamConnection } from '../stream/connection.js';
import { RoomAuth } from './grants.js';
import type { RoomListener } from './listener.js';
import { RedisRelay } from './redis-relay.js';
import { LocalRelay, type RoomRelay } from './relay.js';
import { RoomRegistry, roomMetrics, type RoomMetrics } from './room.js';

/** The rooms' shared state (server/rooms/plugin.ts serves it); tests and the benchmark inspect it. */
export interface RoomsService {
  registry: RoomRegistry;
  /** How rooms reach other nodes (LocalRelay without --redis-url). */
  relay: RoomRelay;
  /** Open publisher and listener connections. */
  publishers: Set<StreamConnection>;
  listeners: Set<RoomListener>;
  auth: RoomAuth;
  metrics: RoomMetrics;
}

/** Builds the rooms' state; with --redis-url it connects to Redis (and fails naming why it cannot). */
export async function createRooms(config: ServerConfig, auth: Authenticator, metrics: ServerMetrics, log: FastifyBaseLogger): Promise<RoomsService> {
  const registry = new RoomRegistry();
  const rmetrics = roomMetrics(metrics.registry);
  const roomAuth = new RoomAuth(auth, config.roomKeys);
  const relay: RoomRelay = config.redisUrl
    ? await RedisRelay.connect({
      url: config.redisUrl, heartbeatMs: config.redisHeartbeatMs, registry, metrics: rmetrics, maxListeners: config.maxRoomListeners,
      grants: roomAuth.shareable, onGrants: (all) => roomAuth.useShared(all), log,
    })
    : new LocalRelay(registry);
  return { registry, relay, publishers: new Set(), listeners: new Set(), auth: roomAuth, metrics: rmetrics };
}
