import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOM_DEMO_MODULES } from '../../server/rooms/demo-pages.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** Modules a browser loads from `entry`: imports that survive transpiling (type-only ones vanish), followed recursively. */
function browserGraph(entry: string): { modules: Set<string>; bare: string[] } {
  const modules = new Set<string>();
  const bare: string[] = [];
  const visit = (path: string) => {
    const id = relative(ROOT, path).replace(/\.ts$/, '');
    if (modules.has(id)) return;
    modules.add(id);
    const js = ts.transpileModule(readFileSync(path, 'utf8'), { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText;
    for (const m of js.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith('.')) visit(join(dirname(path), spec.replace(/\.js$/, '.ts')));
      else bare.push(`${id} -> ${spec}`);
    }
    for (const m of js.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) bare.push(`${id} -> import(${m[1]})`);
  };
  visit(join(ROOT, entry));
  return { modules, bare };
}

describe('client-side decoding stays browser-safe', () => {
  it('the browser entry points reach only the protocol, the client and pure codec modules (no node:, no packages)', () => {
    for (const entry of ['clients/ts/decoder.ts', 'clients/ts/room-client.ts', 'clients/ts/decoder-cache-web.ts']) {
      const { modules, bare } = browserGraph(entry);
      expect(bare, `${entry} imports packages or node: modules`).toEqual([]);
      // every module is one the demo serves, so a new import cannot silently break the pages
      expect([...modules].filter((m) => !ROOM_DEMO_MODULES.has(m)), entry).toEqual([]);
    }
    // the decoder shares the server's windowing code rather than a copy of it
    expect(browserGraph('clients/ts/decoder.ts').modules).toContain('codec/stream-decoder');
    expect(browserGraph('clients/ts/decoder.ts').modules).toContain('codec/window-plan');
  });

  it('the Node decoder is the only client module that loads onnxruntime-node', () => {
    expect(browserGraph('clients/ts/decoder-node.ts').bare).toEqual(['clients/ts/decoder-node -> node:fs/promises', 'clients/ts/decoder-node -> node:path', 'clients/ts/decoder-node -> import(onnxruntime-node)']);
  });
});
