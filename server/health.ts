import type { FastifyInstance } from 'fastify';
import { modelLoad, notReadyReasons } from './load.js';

/**
 * /healthz (liveness: the process answers), /readyz (whether a balancer should send new streams
 * here, and why not) and /metrics (Prometheus).
 */
export async function healthPlugin(app: FastifyInstance): Promise<void> {
  const { config, registry, batchers, metrics, drain, streams } = app.tokstream;
  const loads = () => [...batchers].map(([name, b]) => modelLoad(name, b));
  const readiness = () => {
    const models = loads();
    return { models, reasons: notReadyReasons({ config, loads: models, draining: drain.draining, closing: drain.closing, streams: streams.connections.size }) };
  };
  metrics.watchLoad(() => {
    const { models, reasons } = readiness();
    return { models, ready: reasons.length === 0, draining: drain.draining, httpJobs: drain.pending().httpJobs ?? 0 };
  });
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
}
