import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { registerBrowserModules } from './browser-modules.js';
import { registerAbDemo } from './demo-ab-route.js';
import { registerRoomDemo } from './rooms/demo-pages.js';
import { HTML, JS, firstExisting } from './static-files.js';

/**
 * The demo pages (with --demo): /demo/ (page + scripts from server/demo/), the A/B listening page
 * /demo/ab/, the rooms pages /demo/rooms/, and /demo/src/, the TypeScript modules they run
 * (server/browser-modules.ts).
 */
export async function demoPlugin(app: FastifyInstance): Promise<void> {
  const demoDir = firstExisting([fileURLToPath(new URL('./demo/', import.meta.url)), fileURLToPath(new URL('../../server/demo/', import.meta.url))]);

  app.get('/demo', async (_req, reply) => reply.redirect('/demo/'));
  app.get('/demo/', async (_req, reply) => reply.type(HTML).send(await readFile(`${demoDir}index.html`)));
  app.get('/demo/demo.js', async (_req, reply) => reply.type(JS).send(await readFile(`${demoDir}demo.js`)));
  // shared with the room pages (server/rooms/demo/), which import it as ../page.js
  app.get('/demo/page.js', async (_req, reply) => reply.type(JS).send(await readFile(`${demoDir}page.js`)));
  registerBrowserModules(app);
  await registerAbDemo(app, demoDir);
  registerRoomDemo(app);
}
