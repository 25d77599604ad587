import Fastify, { type FastifyInstance } from 'fastify';
import type { ServerConfig } from './config.js';
import { demoPlugin } from './demo-route.js';
import { healthPlugin } from './health.js';
import { clientErrorReply, sendError, useJsonErrors } from './http/errors.js';
import { httpApi } from './http/plugin.js';
import { roomsPlugin } from './rooms/plugin.js';
import { closeServices, createServices } from './services.js';
import { streamPlugin } from './stream/plugin.js';

/**
 * Builds the whole server (not listening yet): the shared services on `app.tokstream`
 * (server/services.ts), then each part as a plugin.
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
  const services = await createServices(config, app.log);
  app.decorate('tokstream', services);
  useJsonErrors(app, () => services.drain.closing);
  app.server.on('upgrade', services.sockets.upgrade);

  await app.register(healthPlugin);
  await app.register(streamPlugin);
  await app.register(httpApi);
  await app.register(roomsPlugin);
  if (config.demo) await app.register(demoPlugin);

  app.addHook('preClose', async () => {
    services.drain.markClosing();
    await services.sockets.shutdown();
  });
  app.addHook('onClose', () => closeServices(services));
  return app;
}
