import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { resolveHttpApiConfig } from './config.js';
import { registerDecodeRoute } from './decode-route.js';
import type { HttpApiOptions, RouteDeps } from './deps.js';
import { registerEncodeRoute } from './encode-route.js';
import { sendError } from './errors.js';
import { JobSlots } from './job-slots.js';
import { registerModelsRoute } from './models-route.js';
import { registerOpenApi } from './openapi.js';
import { errorSchema } from './schemas.js';

export type { HttpApiOptions } from './deps.js';

/**
 * The batch HTTP API as a fastify plugin (encapsulated: its body parsers and
 * error handler apply to its own routes only). Register it with the process's
 * models and batchers so bulk jobs share them with the streams:
 *
 *   app.register(httpApi, { models, broken, batcherFor, authenticate, config })
 */
export async function httpApi(app: FastifyInstance, opts: HttpApiOptions): Promise<void> {
  const config = resolveHttpApiConfig(opts.config);
  const deps: RouteDeps = { ...opts, config, slots: new JobSlots(config.maxConcurrentJobs, config.retryAfterSec) };

  // Bodies are streamed: every content type reaches the route as the raw request stream
  // (never buffered, never parsed as JSON/text), except multipart, whose file part is streamed.
  app.removeAllContentTypeParsers();
  // A body left unread (early 503/400/401) is still a stream that errors when the client hangs up;
  // with no listener that error would take the whole process down.
  app.addHook('onRequest', async (request) => {
    request.raw.on('error', (e) => request.log.debug({ err: e }, 'request stream error'));
  });
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  await app.register(multipart, { limits: { fileSize: config.maxBodyBytes, files: 1, fields: 16 } });

  app.addSchema(errorSchema);
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
  await registerOpenApi(app, Boolean(opts.authenticate));

  registerModelsRoute(app, deps);
  registerEncodeRoute(app, deps);
  registerDecodeRoute(app, deps);
}
