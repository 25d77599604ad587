import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { ServerConfig } from './config.js';

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Builds and starts the server (`tokstream serve`). Prints which execution provider each model
 * really runs on, so a silent CPU fallback cannot go unnoticed. With `handleSignals`, SIGINT and
 * SIGTERM close streams cleanly (1001) before exiting.
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
  if (opts.handleSignals) {
    const onSignal = (sig: string) => {
      console.error(`tokstream: ${sig}, closing streams`);
      void close().then(() => process.exit(0));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { app, url, port, close };
}
