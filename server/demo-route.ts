import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** Files the demo page may load; nothing else under these folders is served. */
const DEMO_FILES: Record<string, string> = { 'index.html': 'text/html; charset=utf-8', 'demo.js': 'text/javascript; charset=utf-8' };
const CLIENT_FILES = ['index', 'client', 'protocol'];

/** The first of several candidate folders that exists (source tree, or dist/ next to it). */
function firstExisting(candidates: string[]): string {
  return candidates.find((d) => existsSync(d)) ?? candidates[0];
}

/**
 * The browser demo: /demo/ (page + script from server/demo/) and /demo/client/*.js, the TypeScript
 * client as ES modules: compiled files from dist/ when built, otherwise transpiled from
 * clients/ts/ on first request (development and tests run from sources).
 */
export async function registerDemo(app: FastifyInstance): Promise<void> {
  const demoDir = firstExisting([fileURLToPath(new URL('./demo/', import.meta.url)), fileURLToPath(new URL('../../server/demo/', import.meta.url))]);
  const clientDir = fileURLToPath(new URL('../clients/ts/', import.meta.url));
  const cache = new Map<string, string>();

  app.get('/demo', async (_req, reply) => reply.redirect('/demo/'));
  app.get('/demo/', async (_req, reply) => reply.type(DEMO_FILES['index.html']).send(await readFile(`${demoDir}index.html`)));
  app.get('/demo/demo.js', async (_req, reply) => reply.type(DEMO_FILES['demo.js']).send(await readFile(`${demoDir}demo.js`)));
  app.get<{ Params: { name: string } }>('/demo/client/:name', async (req, reply) => {
    const base = req.params.name.replace(/\.js$/, '');
    if (!CLIENT_FILES.includes(base)) return reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
    let js = cache.get(base);
    if (js === undefined) {
      js = existsSync(`${clientDir}${base}.js`) ? await readFile(`${clientDir}${base}.js`, 'utf8') : await transpile(`${clientDir}${base}.ts`);
      cache.set(base, js);
    }
    return reply.type('text/javascript; charset=utf-8').send(js);
  });
}

async function transpile(path: string): Promise<string> {
  // typescript is a dev dependency: present where sources run, absent (and unneeded) in a built install
  const ts = (await import('typescript')).default;
  const src = await readFile(path, 'utf8');
  return ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText;
}
