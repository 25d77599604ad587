import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { ServerConfig } from './config.js';
import type { DrainResult } from './drain.js';

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  /**
   * Graceful stop: refuse new streams, room joins and HTTP jobs, let running ones finish until
   * `drainTimeoutMs`, then close the rest (streams: `shutting_down`, 1001; HTTP jobs: cut).
   */
  drainAndClose(): Promise<DrainResult>;
  close(): Promise<void>;
}

/**
 * Builds and starts the server (`tokstream serve`). Prints which execution provider each model
 * really runs on, so a silent CPU fallback cannot go unnoticed. With `handleSignals`, SIGTERM
 * drains (docs/deploy.md) and SIGINT closes streams at once (1001); either way the exit status is 0.
 */
export async function startServer(config: ServerConfig, opts: { handleSignals?: boolean } = {}): Promise<RunningServer> {
  const app = await buildApp(config);
  const { registry } = app.tokstream;
  for (const m of registry.versions) {
    const older = registry.models.get(m.name) !== m ? ' (older version, decodes the .tok files it wrote)' : '';
    const line = `model ${m.name} ${m.manifest.version}${older}: ${m.provider.toUpperCase()} execution provider${m.fallbackReason ? ` (FALLBACK: ${m.fallbackReason})` : ''}`;
    console.error(`tokstream: ${line}`);
    app.log.info({ model: m.name, provider: m.provider, fallback: m.fallbackReason }, line);
  }
  for (const b of registry.broken) console.error(`tokstream: model folder ${b.dir} BROKEN, skipped: ${b.error}`);
  if (registry.models.size === 0) console.error(`tokstream: WARNING: no usable model under ${config.modelsDir}; /readyz reports not ready`);
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  console.error(`tokstream: listening on ${url} (streams: ws://${host}:${port}/v1/stream${config.demo ? `, demo: ${url}/demo/` : ''}, API docs: ${url}/docs)`);
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= app.close());
  let drained: Promise<DrainResult> | undefined;
  const drainAndClose = () =>
    (drained ??= app.tokstream.drain.begin().then(async (result) => {
      const line = result.outcome === 'finished'
        ? `drained in ${result.elapsedMs} ms`
        : `drain deadline (${config.drainTimeoutMs} ms) reached; closing ${JSON.stringify(result.pending)}`;
      console.error(`tokstream: ${line}`);
      app.log.info({ ...result }, line);
      // HTTP jobs still running at the deadline are cut: app.close() would wait for them
      if (result.outcome === 'deadline') app.server.closeAllConnections();
      await close();
      return result;
    }));
  if (opts.handleSignals) {
    // SIGTERM (orchestrators) drains; SIGINT (Ctrl-C), or a second signal, closes at once
    const onSignal = (sig: string) => {
      const now = sig === 'SIGINT' || drained !== undefined;
      console.error(`tokstream: ${sig}, ${now ? 'closing streams' : `draining (up to ${config.drainTimeoutMs} ms)`}`);
      void (now ? close() : drainAndClose()).then(() => process.exit(0));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  return { app, url, port, drainAndClose, close };
}
