import Fastify, { type FastifyInstance } from 'fastify';
import { ModelBatcher } from '../codec/batcher.js';
import type { CodecModel } from '../codec/model.js';
import { discoverModels, type ModelRegistry } from '../codec/registry.js';
import { Authenticator } from './auth.js';
import type { ServerConfig } from './config.js';
import { registerDemo } from './demo-route.js';
import { Drain } from './drain.js';
import { clientErrorReply, sendError, useJsonErrors } from './http/errors.js';
import { modelLoad, notReadyReasons } from './load.js';
import { ServerMetrics } from './metrics.js';
import { registerStreamEndpoint, type StreamEndpoint } from './stream/plugin.js';

/** What the server shares between its parts (streams, HTTP API, rooms), on `app.tokstream`. */
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
  streams: StreamEndpoint;
  /** Graceful drain (SIGTERM): parts refuse new work once it begins and register what it waits for. */
  drain: Drain;
}

declare module 'fastify' {
  interface FastifyInstance {
    tokstream: TokstreamServices;
  }
}

/**
 * Builds the whole server (not listening yet): loads every model, one batcher per model,
 * health/readiness/metrics, the WebSocket stream endpoint and the demo page.
 */
export async function buildApp(config: ServerConfig): Promise<FastifyInstance> {
  // every error body in the documented shape: unparsable HTTP (clientErrorReply), bad URLs (frameworkErrors),
  // requests arriving while closing (useJsonErrors' 503, not fastify's own)
  const app = Fastify({
    logger: { level: config.logLevel },
    bodyLimit: 1 << 20,
    clientErrorHandler: clientErrorReply,
    frameworkErrors: sendError,
    return503OnClosing: false,
  });
  let closing = false;
  useJsonErrors(app, () => closing);
  const registry = await discoverModels(config.modelsDir, {
    provider: config.provider,
    intraOpThreads: config.intraOpThreads,
    interOpThreads: config.interOpThreads,
    log: (msg) => app.log.warn(msg),
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
  if (config.defaultModel && !registry.models.has(config.defaultModel)) app.log.warn(`default model "${config.defaultModel}" is not loaded`);
  const auth = new Authenticator(config);
  if (!auth.enabled) app.log.warn('authentication is OFF (--no-auth): any client may connect');
  const drain = new Drain(config.drainTimeoutMs);
  const streams = registerStreamEndpoint(app, { config, batchers, defaultModel, metrics, log: app.log, drain }, auth);
  app.decorate('tokstream', { config, registry, batchers, batcherOf, defaultModel, metrics, auth, streams, drain });

  const loads = () => [...batchers].map(([name, b]) => modelLoad(name, b));
  const readiness = () => {
    const models = loads();
    return { models, reasons: notReadyReasons({ config, loads: models, draining: drain.draining, closing, streams: streams.connections.size }) };
  };
  metrics.watchLoad(() => {
    const { models, reasons } = readiness();
    return { models, ready: reasons.length === 0, draining: drain.draining, httpJobs: drain.pending().httpJobs ?? 0 };
  });
  // liveness only: the process answers; a balancer decides on /readyz
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const { models, reasons } = readiness();
    const ready = reasons.length === 0;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not_ready',
      reasons,
      models: [...registry.models.values()].map((m) => ({ name: m.name, version: m.manifest.version, provider: m.provider })),
      broken: registry.broken,
      load: models,
      streams: streams.connections.size,
      maxStreams: config.maxStreams,
      pending: drain.pending(),
    });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  if (config.demo) await registerDemo(app);

  // ---- [issue 6] HTTP batch API: register its plugin (server/http/) on the next line ----
  await app.register((await import('./http/plugin.js')).httpApi);
  // ---- [issue 8] rooms: add a WebSocket path with app.tokstream.streams.addUpgradeRoute(...) ----
  await (await import('./rooms/plugin.js')).registerRooms(app);

  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onClose', async () => {
    await Promise.all([...batcherOf.values()].map((b) => b.close()));
    await Promise.all(registry.versions.map((m) => m.release()));
  });
  return app;
}
