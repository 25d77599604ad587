import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { HTML, JS, firstExisting, moduleSource } from '../static-files.js';
import { ortWebBase } from './decoder-assets.js';

const PAGES: Record<string, string> = { 'speaker.html': HTML, 'listener.html': HTML, 'speaker.js': JS, 'listener.js': JS };
/** Modules the pages import, by repository path: served at /demo/rooms/src/<path>.js so relative imports resolve. */
export const ROOM_DEMO_MODULES = new Set([
  'clients/ts/protocol', 'clients/ts/socket', 'clients/ts/client', 'clients/ts/room-protocol', 'clients/ts/room-client', 'clients/ts/decoder', 'clients/ts/decoder-cache-web',
  'codec/stream-decoder', 'codec/window-plan', 'codec/sample-queue', 'codec/errors',
]);

/**
 * The rooms demo: /demo/rooms/speaker.html (microphone -> room) and /demo/rooms/listener.html
 * (room -> tokens decoded in the browser by onnxruntime-web -> speakers). Client modules are the
 * compiled files from dist/ when built, otherwise transpiled from the TypeScript sources.
 */
export function registerRoomDemo(app: FastifyInstance): void {
  const pageDir = firstExisting([fileURLToPath(new URL('./demo/', import.meta.url)), fileURLToPath(new URL('../../../server/rooms/demo/', import.meta.url))]);
  const repoModule = moduleSource(fileURLToPath(new URL('../../', import.meta.url)));
  const ort = ortWebBase();

  app.get('/demo/rooms/', async (_req, reply) => reply.redirect('/demo/rooms/listener.html'));
  app.get<{ Params: { file: string } }>('/demo/rooms/:file', async (req, reply) => {
    const { file } = req.params;
    if (file === 'ort.mjs') {
      // a stable name for the versioned onnxruntime-web files, and where its wasm lives
      return reply.type(JS).send(`export * from '${ort.path}ort.wasm.min.mjs';\nexport const wasmBase = '${ort.path}';\n`);
    }
    const type = PAGES[file];
    if (!type) return reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
    return reply.type(type).send(await readFile(`${pageDir}${file}`));
  });
  app.get<{ Params: { '*': string } }>('/demo/rooms/src/*', async (req, reply) => {
    const path = req.params['*'].replace(/\.js$/, '');
    if (!ROOM_DEMO_MODULES.has(path)) return reply.code(404).send({ error: { code: 'not_found', message: 'no such module' } });
    return reply.type(JS).send(await repoModule(path));
  });
}
