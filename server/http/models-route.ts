import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { bitrate, frameRate } from '../../codec/manifest.js';
import type { RouteDeps } from './deps.js';
import { modelsSchema } from './schemas.js';

/** GET /v1/models: what can be asked for, at which bitrates, on which execution provider; and what failed to load. */
export function registerModelsRoute(app: FastifyInstance, deps: RouteDeps): void {
  app.get('/v1/models', { schema: modelsSchema, ...(deps.authenticate ? { preHandler: deps.authenticate } : {}) }, async () => ({
    models: [...deps.models.values()].map((model) => {
      const m = model.manifest;
      return {
        name: m.name,
        version: m.version,
        sampleRate: m.sampleRate,
        frameRate: frameRate(m),
        numCodebooks: m.numCodebooks,
        codebookSize: m.codebookSize,
        causal: m.causal,
        provider: model.provider,
        ...(model.fallbackReason ? { fallbackReason: model.fallbackReason } : {}),
        hash: model.hash,
        bitrates: Array.from({ length: m.numCodebooks }, (_, i) => ({ codebooks: i + 1, bitsPerSecond: bitrate(m, i + 1) })),
        manifest: m,
      };
    }),
    // folder names only: server paths are none of the client's business
    broken: deps.broken.map((b) => ({ folder: basename(b.dir), error: b.error.replaceAll(b.dir, basename(b.dir)) })),
  }));
}
