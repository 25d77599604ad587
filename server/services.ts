import type { FastifyBaseLogger } from 'fastify';
import { ModelBatcher } from '../codec/batcher.js';
import type { CodecModel } from '../codec/model.js';
import { discoverModels, type ModelRegistry } from '../codec/registry.js';
import { Authenticator } from './auth.js';
import type { ServerConfig } from './config.js';
import { Drain } from './drain.js';
import { ServerMetrics } from './metrics.js';
import { createRooms, type RoomsService } from './rooms/service.js';
import type { StreamConnection } from './stream/connection.js';
import { WebSocketUpgrades } from './ws-upgrade.js';

/** What the server's plugins (health, stream, http, rooms, demo) share, on `app.tokstream`. */
export interface TokstreamServices {
  config: ServerConfig;
  registry: ModelRegistry;
  /** One dynamic batcher per model, shared by streams (realtime) and HTTP jobs (bulk): current versions by name. */
  batchers: Map<string, ModelBatcher>;
  /** The batcher of every loaded version (older ones decode the .tok files they wrote). */
  batcherOf: Map<CodecModel, ModelBatcher>;
  defaultModel: string | undefined;
  metrics: ServerMetrics;
  auth: Authenticator;
  /** Graceful drain (SIGTERM) and close: parts refuse new work once either begins and register what a drain waits for. */
  drain: Drain;
  /** The WebSocket endpoints' upgrades, refusals and shutdown. */
  sockets: WebSocketUpgrades;
  /** Open /v1/stream connections (each holds a stream slot). */
  streams: { connections: Set<StreamConnection> };
  rooms: RoomsService;
}

declare module 'fastify' {
  interface FastifyInstance {
    tokstream: TokstreamServices;
  }
}

/** Loads every model (one batcher per model and version) and builds the shared services. */
export async function createServices(config: ServerConfig, log: FastifyBaseLogger): Promise<TokstreamServices> {
  const registry = await discoverModels(config.modelsDir, {
    provider: config.provider,
    intraOpThreads: config.intraOpThreads,
    interOpThreads: config.interOpThreads,
    log: (msg) => log.warn(msg),
  });
  const metrics = new ServerMetrics(config.defaultChunkMs / 1000);
  const batchers = new Map<string, ModelBatcher>();
  const batcherOf = new Map<CodecModel, ModelBatcher>();
  for (const model of registry.versions) {
    const current = registry.models.get(model.name) === model;
    const name = current ? model.name : `${model.name}@${model.manifest.version}`;
    const batcher = new ModelBatcher(model, {
      maxBatch: config.maxBatch,
      maxWaitMs: config.maxBatchWaitMs,
      maxConcurrent: config.maxConcurrentRuns,
      maxQueued: config.maxQueuedWindows,
      bulkShare: config.bulkShare,
      bulkRunBudgetMs: config.bulkRunBudgetMs,
      onBatch: (info) => metrics.observeBatch(name, info),
    });
    batcherOf.set(model, batcher);
    if (current) batchers.set(model.name, batcher);
  }
  const defaultModel = config.defaultModel ?? (registry.models.has('default') ? 'default' : [...registry.models.keys()][0]);
  if (config.defaultModel && !registry.models.has(config.defaultModel)) log.warn(`default model "${config.defaultModel}" is not loaded`);
  const auth = new Authenticator(config);
  if (!auth.enabled) log.warn('authentication is OFF (--no-auth): any client may connect');
  const drain = new Drain(config.drainTimeoutMs);
  const sockets = new WebSocketUpgrades({ maxFrameBytes: config.maxFrameBytes, metrics, log, drain });
  const rooms = await createRooms(config, auth, metrics, log);
  return { config, registry, batchers, batcherOf, defaultModel, metrics, auth, drain, sockets, streams: { connections: new Set() }, rooms };
}

/** Releases what createServices holds, once the server no longer serves. */
export async function closeServices(s: TokstreamServices): Promise<void> {
  await s.rooms.relay.close();
  await Promise.all([...s.batcherOf.values()].map((b) => b.close()));
  await Promise.all(s.registry.versions.map((m) => m.release()));
}
