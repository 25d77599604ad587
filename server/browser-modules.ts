import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { JS, moduleSource } from './static-files.js';

/** Modules the demo pages import, by repository path: served at /demo/src/<path>.js so relative imports resolve. */
export const BROWSER_MODULES = new Set([
  'protocol/index', 'protocol/errors', 'protocol/stream', 'protocol/rooms', 'protocol/parse',
  'clients/ts/index', 'clients/ts/socket', 'clients/ts/client', 'clients/ts/room-client', 'clients/ts/decoder', 'clients/ts/decoder-cache-web',
  'codec/stream-decoder', 'codec/window-plan', 'codec/sample-queue', 'codec/errors',
]);

/**
 * The TypeScript modules the demo pages run (client, protocol, client-side decoding) as ES
 * modules: the compiled files from dist/ when built, otherwise transpiled from the sources.
 */
export function registerBrowserModules(app: FastifyInstance): void {
  const repoModule = moduleSource(fileURLToPath(new URL('../', import.meta.url)));
  app.get<{ Params: { '*': string } }>('/demo/src/*', async (req, reply) => {
    const path = req.params['*'].replace(/\.js$/, '');
    if (!BROWSER_MODULES.has(path)) return reply.code(404).send({ error: { code: 'not_found', message: 'no such module' } });
    return reply.type(JS).send(await repoModule(path));
  });
}
