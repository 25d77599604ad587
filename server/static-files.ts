import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export const HTML = 'text/html; charset=utf-8';
export const JS = 'text/javascript; charset=utf-8';

/** The first of several candidate folders that exists (source tree, or dist/ next to it). */
export function firstExisting(candidates: string[]): string {
  return candidates.find((d) => existsSync(d)) ?? candidates[0];
}

/**
 * Browser modules by path below `root` (without .js): the compiled file from dist/ when built,
 * otherwise transpiled from the TypeScript source on first request; either way kept in memory.
 * Callers check the path against their own allow-list first.
 */
export function moduleSource(root: string): (path: string) => Promise<string> {
  const cache = new Map<string, string>();
  return async (path) => {
    let js = cache.get(path);
    if (js === undefined) {
      js = existsSync(`${root}${path}.js`) ? await readFile(`${root}${path}.js`, 'utf8') : await transpile(`${root}${path}.ts`);
      cache.set(path, js);
    }
    return js;
  };
}

async function transpile(path: string): Promise<string> {
  // typescript is a dev dependency: present where sources run, absent (and unneeded) in a built install
  const ts = (await import('typescript')).default;
  const src = await readFile(path, 'utf8');
  return ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText;
}
