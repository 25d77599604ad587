import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModelManifest } from '../../codec/manifest.js';
import type { ModelRegistry } from '../../codec/registry.js';
import type { RoomAuth } from './grants.js';

/** onnxruntime-web files a browser needs for the wasm backend (the .mjs loads the .wasm next to it). */
const ORT_WEB_FILES: Record<string, string> = {
  'ort.wasm.min.mjs': 'text/javascript; charset=utf-8',
  'ort-wasm-simd-threaded.mjs': 'text/javascript; charset=utf-8',
  'ort-wasm-simd-threaded.wasm': 'application/wasm',
};
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Graphs a client may fetch, by URL name: only the decoders the model's manifest names, never other files. */
const CLIENT_GRAPHS: Record<string, (m: ModelManifest) => { file: string; sha256: string } | undefined> = {
  'decoder.onnx': (m) => m.decoder,
  'decoder_stream.onnx': (m) => m.decoder.streaming,
};

/** Where this server serves onnxruntime-web: the version is in the path, so the files are immutable. */
export function ortWebBase(): { dir: string; version: string; path: string } {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  const version = (JSON.parse(readFileSync(join(dir, '..', 'package.json'), 'utf8')) as { version: string }).version;
  return { dir, version, path: `/vendor/onnxruntime-web/${version}/` };
}

/**
 * What a client needs to decode tokens itself:
 *   GET /v1/models/:name/manifest.json            the model's manifest (revalidated by ETag)
 *   GET /v1/models/:name/decoder.onnx[?sha256=h]  the decoder graph; with the manifest's sha256 in the
 *                                                 URL the response never changes (immutable, cached a year)
 *   GET /v1/models/:name/decoder_stream.onnx[?sha256=h]  the stateful streaming decoder (manifest
 *                                                 `decoder.streaming`), served the same way; 404 without one
 *   GET /vendor/onnxruntime-web/<version>/<file>  the onnxruntime-web wasm backend (public)
 * Any API key or room key may fetch models (listeners need them); onnxruntime-web needs none.
 */
export function registerDecoderAssets(app: FastifyInstance, models: ModelRegistry, roomAuth: RoomAuth): void {
  const authenticate = async (req: FastifyRequest, reply: FastifyReply) => {
    const result = roomAuth.check(req.headers, new URL(req.url, 'http://local').searchParams);
    if ('failure' in result) await reply.code(result.failure.code === 'unauthorized' ? 401 : 403).send({ error: result.failure });
  };
  const notFound = (reply: FastifyReply, name: string) => reply.code(404).send({ error: { code: 'model_not_found', message: `no model "${name}"` } });

  app.get<{ Params: { name: string } }>('/v1/models/:name/manifest.json', { preHandler: authenticate }, async (req, reply) => {
    const model = models.models.get(req.params.name);
    if (!model) return notFound(reply, req.params.name);
    const body = JSON.stringify(model.manifest);
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
    reply.header('etag', etag).header('cache-control', 'no-cache');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(body);
  });

  for (const [route, graphOf] of Object.entries(CLIENT_GRAPHS)) {
    app.get<{ Params: { name: string }; Querystring: { sha256?: string } }>(`/v1/models/:name/${route}`, { preHandler: authenticate }, async (req, reply) => {
      const model = models.models.get(req.params.name);
      if (!model) return notFound(reply, req.params.name);
      const graph = graphOf(model.manifest);
      if (!graph) return reply.code(404).send({ error: { code: 'not_found', message: `model "${model.name}" has no ${route}` } });
      const { sha256, file } = graph;
      const asked = req.query.sha256;
      if (asked !== undefined && asked !== sha256) {
        return reply.code(404).send({ error: { code: 'model_mismatch', message: `model "${model.name}" has ${route} sha256 ${sha256} now, not ${asked}; fetch the manifest again` } });
      }
      const etag = `"${sha256}"`;
      reply.header('etag', etag).header('cache-control', asked ? IMMUTABLE : 'no-cache');
      if (req.headers['if-none-match'] === etag) return reply.code(304).send();
      const path = join(model.dir, file);
      return reply.type('application/octet-stream').header('content-length', statSync(path).size).send(createReadStream(path));
    });
  }

  const ort = ortWebBase();
  app.get<{ Params: { file: string } }>(`${ort.path}:file`, async (req, reply) => {
    const type = ORT_WEB_FILES[req.params.file];
    if (!type) return reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
    const path = join(ort.dir, req.params.file);
    return reply.type(type).header('cache-control', IMMUTABLE).header('content-length', statSync(path).size).send(createReadStream(path));
  });
}
