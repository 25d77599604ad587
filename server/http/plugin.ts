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
 * error handler apply to its own routes only). Inside the server it takes the
 * models, batchers and auth the streams use from `app.tokstream` (server/services.ts),
 * so bulk jobs share model sessions and batchers with the streams; tests and
 * embedders may pass them explicitly (settings not given take their defaults):
 *
 *   app.register(httpApi, { models, broken, batcherFor, authenticate, config })
 */
export async function httpApi(app: FastifyInstance, opts: Partial<HttpApiOptions> = {}): Promise<void> {
  const resolved = { ...fromServices(app), ...stripUndefined(opts) };
  if (!resolved.models || !resolved.broken || !resolved.batcherFor) {
    throw new Error('http api: no models/batchers given and none on app.tokstream');
  }
  const config = resolveHttpApiConfig(resolved.config);
  const deps: RouteDeps = {
    ...(resolved as HttpApiOptions),
    config,
    slots: new JobSlots(config.maxConcurrentJobs, config.retryAfterSec, resolved.drain),
  };

  // Bodies are streamed: every content type reaches the route as the raw request stream
  // (never buffered, never parsed as JSON/text), except multipart, whose file part is streamed.
  app.removeAllContentTypeParsers();
  // A body left unread (early 503/400/401) is still a stream that errors when the client hangs up;
  // with no listener that error would take the whole process down.
  app.addHook('onRequest', async (request) => {
    request.raw.on('error', (e) => request.log.debug({ reason: e.message }, 'request stream error'));
  });
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  await app.register(multipart, { limits: { fileSize: config.maxBodyBytes, files: 1, fields: 16 } });

  app.addSchema(errorSchema);
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
  await registerOpenApi(app, Boolean(deps.authenticate));

  registerModelsRoute(app, deps);
  registerEncodeRoute(app, deps);
  registerDecodeRoute(app, deps);
}

/** The shared services on `app.tokstream` (absent when the plugin runs alone), as plugin options. */
function fromServices(app: FastifyInstance): Partial<HttpApiOptions> {
  if (!app.hasDecorator('tokstream')) return {};
  const s = app.tokstream;
  return {
    models: s.registry.models,
    versions: s.registry.versions,
    broken: s.registry.broken,
    batcherFor: (model) => {
      const b = s.batcherOf.get(model);
      if (!b) throw new Error(`no batcher for model ${model.name}`);
      return b;
    },
    defaultModel: s.defaultModel,
    // the streams' own check: API key unless --no-auth, and the browser origin allow-list
    authenticate: s.auth.hook(),
    drain: s.drain,
    // the server's settings (flags, TOKSTREAM_HTTP_* variables), read and checked once at start-up
    config: s.config,
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
