import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export const TOK_MEDIA_TYPE = 'application/vnd.tokstream.tok';

const binary = { schema: { type: 'string', format: 'binary' } };
const multipartFile = (extra: Record<string, unknown>) => ({
  schema: { type: 'object', required: ['file'], properties: { ...extra, file: { type: 'string', format: 'binary' } } },
});

/** Request bodies are streams, so fastify validates no body schema; the document states them here instead. */
const REQUEST_BODIES: Record<string, unknown> = {
  '/v1/encode': {
    required: true,
    description: 'audio in any format ffmpeg reads (wav, flac, mp3, ogg/opus, m4a/mp4, webm, ...)',
    content: {
      'application/octet-stream': binary,
      'audio/*': binary,
      'multipart/form-data': multipartFile({ model: { type: 'string' }, codebooks: { type: 'integer' } }),
    },
  },
  '/v1/decode': {
    required: true,
    description: 'a .tok file (docs/tok-format.md)',
    content: { [TOK_MEDIA_TYPE]: binary, 'application/octet-stream': binary, 'multipart/form-data': multipartFile({ model: { type: 'string' }, codebooks: { type: 'integer' } }) },
  },
};

/** OpenAPI document (GET /docs/json) and Swagger UI (GET /docs) for the routes registered after this. */
export async function registerOpenApi(app: FastifyInstance, withAuth: boolean): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'tokstream batch HTTP API', version: '1', description: 'Audio <-> codec tokens. Errors: {"error": {"code", "message"}} (docs/http-api.md).' },
      ...(withAuth
        ? {
            components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'authorization', description: 'Bearer <key>, as for the stream server' } } },
            security: [{ apiKey: [] }],
          }
        : {}),
    },
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject;
      const { openapiObject } = documentObject;
      const doc = openapiObject as { paths?: Record<string, Record<string, Record<string, unknown>>> };
      for (const [path, body] of Object.entries(REQUEST_BODIES)) {
        const post = doc.paths?.[path]?.post;
        if (post) post.requestBody = body;
      }
      return openapiObject;
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
