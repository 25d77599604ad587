import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { HTML, JS, firstExisting } from '../static-files.js';
import { ortWebBase } from './decoder-assets.js';

const PAGES: Record<string, string> = { 'speaker.html': HTML, 'listener.html': HTML, 'speaker.js': JS, 'listener.js': JS };

/**
 * The rooms demo: /demo/rooms/speaker.html (microphone -> room) and /demo/rooms/listener.html
 * (room -> tokens decoded in the browser by onnxruntime-web -> speakers). The pages import the
 * client modules from /demo/src/ (server/browser-modules.ts).
 */
export function registerRoomDemo(app: FastifyInstance): void {
  const pageDir = firstExisting([fileURLToPath(new URL('./demo/', import.meta.url)), fileURLToPath(new URL('../../../server/rooms/demo/', import.meta.url))]);
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
}
