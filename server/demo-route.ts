import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { registerAbDemo } from './demo-ab-route.js';
import { HTML, JS, firstExisting, moduleSource } from './static-files.js';

const CLIENT_FILES = ['index', 'client', 'protocol', 'socket'];

/**
 * The browser demo: /demo/ (page + scripts from server/demo/) and /demo/client/*.js, the TypeScript
 * client as ES modules: compiled files from dist/ when built, otherwise transpiled from
 * clients/ts/ on first request (development and tests run from sources).
 */
export async function registerDemo(app: FastifyInstance): Promise<void> {
  const demoDir = firstExisting([fileURLToPath(new URL('./demo/', import.meta.url)), fileURLToPath(new URL('../../server/demo/', import.meta.url))]);
  const clientModule = moduleSource(fileURLToPath(new URL('../clients/ts/', import.meta.url)));

  app.get('/demo', async (_req, reply) => reply.redirect('/demo/'));
  app.get('/demo/', async (_req, reply) => reply.type(HTML).send(await readFile(`${demoDir}index.html`)));
  app.get('/demo/demo.js', async (_req, reply) => reply.type(JS).send(await readFile(`${demoDir}demo.js`)));
  // shared with the room pages (server/rooms/demo/), which import it as ../page.js
  app.get('/demo/page.js', async (_req, reply) => reply.type(JS).send(await readFile(`${demoDir}page.js`)));
  app.get<{ Params: { name: string } }>('/demo/client/:name', async (req, reply) => {
    const base = req.params.name.replace(/\.js$/, '');
    if (!CLIENT_FILES.includes(base)) return reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
    return reply.type(JS).send(await clientModule(base));
  });
  await registerAbDemo(app, demoDir);
}
