import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ortWebBase } from './decoder-assets.js';

const PAGES: Record<string, string> = {
  'speaker.html': 'text/html; charset=utf-8',
  'listener.html': 'text/html; charset=utf-8',
  'speaker.js': 'text/javascript; charset=utf-8',
  'listener.js': 'text/javascript; charset=utf-8',
};
/** Modules the pages import, by repository path: served at /demo/rooms/src/<path>.js so relative imports resolve. */
export const ROOM_DEMO_MODULES = new Set([
  'clients/ts/protocol', 'clients/ts/client', 'clients/ts/room-protocol', 'clients/ts/room-client', 'clients/ts/decoder', 'clients/ts/decoder-cache-web',
  'codec/stream-decoder', 'codec/window-plan', 'codec/sample-queue', 'codec/errors',
]);

function firstExisting(candidates: string[]): string {
  return candidates.find((d) => existsSync(d)) ?? candidates[0];
}

/**
 * The rooms demo: /demo/rooms/speaker.html (microphone -> room) and /demo/rooms/listener.html
 * (room -> tokens decoded in the browser by onnxruntime-web -> speakers). Client modules are the
 * compiled files from dist/ when built, otherwise transpiled from the TypeScript sources.
 */
export function registerRoomDemo(app: FastifyInstance): void {
  const pageDir = firstExisting([fileURLToPath(new URL('./demo/', import.meta.url)), fileURLToPath(new URL('../../../server/rooms/demo/', import.meta.url))]);
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const ort = ortWebBase();
  const cache = new Map<string, string>();

  app.get('/demo/rooms/', async (_req, reply) => reply.redirect('/demo/rooms/listener.html'));
  app.get<{ Params: { file: string } }>('/demo/rooms/:file', async (req, reply) => {
    const { file } = req.params;
    if (file === 'ort.mjs') {
      // a stable name for the versioned onnxruntime-web files, and where its wasm lives
      return reply.type('text/javascript; charset=utf-8').send(`export * from '${ort.path}ort.wasm.min.mjs';\nexport const wasmBase = '${ort.path}';\n`);
    }
    const type = PAGES[file];
    if (!type) return reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
    return reply.type(type).send(await readFile(`${pageDir}${file}`));
  });
  app.get<{ Params: { '*': string } }>('/demo/rooms/src/*', async (req, reply) => {
    const path = req.params['*'].replace(/\.js$/, '');
    if (!ROOM_DEMO_MODULES.has(path)) return reply.code(404).send({ error: { code: 'not_found', message: 'no such module' } });
    let js = cache.get(path);
    if (js === undefined) {
      js = existsSync(`${root}${path}.js`) ? await readFile(`${root}${path}.js`, 'utf8') : await transpile(`${root}${path}.ts`);
      cache.set(path, js);
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
