import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { JS, moduleSource } from './static-files.js';

/**
 * Folders of browser-safe modules: no Node built-ins, no packages, imports only from these folders
 * (test/unit/browser-safe.test.ts holds every file to it). In clients/ts/ the Node adapters, named
 * `*-node.ts`, are the exception and are not served.
 */
export const BROWSER_FOLDERS: readonly string[] = ['protocol', 'codec/pure', 'clients/ts'];

/** Whether `path` (repository path without extension) names a module of a browser folder. */
export function isBrowserModule(path: string): boolean {
  const slash = path.lastIndexOf('/');
  const name = path.slice(slash + 1);
  return BROWSER_FOLDERS.includes(path.slice(0, slash)) && /^[a-z0-9-]+$/.test(name) && !name.endsWith('-node');
}

/**
 * The browser folders as ES modules at /demo/src/<repository path>.js, so relative imports resolve:
 * the compiled files from dist/ when built, otherwise transpiled from the TypeScript sources.
 */
export function registerBrowserModules(app: FastifyInstance): void {
  const root = fileURLToPath(new URL('../', import.meta.url));
  const repoModule = moduleSource(root);
  app.get<{ Params: { '*': string } }>('/demo/src/*', async (req, reply) => {
    const path = req.params['*'].replace(/\.js$/, '');
    if (!isBrowserModule(path) || !(existsSync(`${root}${path}.js`) || existsSync(`${root}${path}.ts`))) {
      return reply.code(404).send({ error: { code: 'not_found', message: 'no such module' } });
    }
    return reply.type(JS).send(await repoModule(path));
  });
}
