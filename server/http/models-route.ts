import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { CodecModel } from '../../codec/model.js';
import type { RouteDeps } from './deps.js';
import { modelsSchema } from './schemas.js';

/** GET /v1/models: what can be asked for, at which bitrates, on which execution provider; and what failed to load. */
export function registerModelsRoute(app: FastifyInstance, deps: RouteDeps): void {
  const describe = (model: CodecModel) => ({ ...model.describe(), manifest: model.manifest });
  app.get('/v1/models', { schema: modelsSchema, ...(deps.authenticate ? { preHandler: deps.authenticate } : {}) }, async () => ({
    models: [...deps.models.values()].map(describe),
    olderVersions: (deps.versions ?? []).filter((m) => deps.models.get(m.name) !== m).map(describe),
    // folder names only: server paths are none of the client's business
    broken: deps.broken.map((b) => ({ folder: basename(b.dir), error: b.error.replaceAll(b.dir, basename(b.dir)) })),
  }));
}
