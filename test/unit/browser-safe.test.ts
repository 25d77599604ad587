import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { BROWSER_FOLDERS, isBrowserModule } from '../../server/browser-modules.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** What each browser folder may import: its own modules and those of the folders named (protocol: codec types only). */
const MAY_IMPORT: Record<string, { folders: string[]; typesOnly?: string[] }> = {
  'codec/pure': { folders: ['codec/pure'] },
  protocol: { folders: ['protocol'], typesOnly: ['codec/pure'] },
  'clients/ts': { folders: ['clients/ts', 'protocol', 'codec/pure'] },
};

/** Every import and re-export of a file: where it resolves (repository path) or the bare specifier, and whether it is type-only. */
function imports(file: string): { target: string; typeOnly: boolean }[] {
  const src = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: { target: string; typeOnly: boolean }[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    found.push({ target: spec.startsWith('.') ? relative(ROOT, join(ROOT, dirname(file), spec)).replace(/\.js$/, '') : spec, typeOnly });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
      const typeOnly = Boolean(clause && (clause.isTypeOnly || (!clause.name && named && named.length > 0 && named.every((e) => e.isTypeOnly))));
      add(node.moduleSpecifier.text, typeOnly);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && ts.isStringLiteral(node.arguments[0])) {
      add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  return found;
}

const folderOf = (path: string) => path.slice(0, path.lastIndexOf('/'));
const modulesIn = (folder: string) => readdirSync(join(ROOT, folder)).filter((f) => f.endsWith('.ts')).map((f) => `${folder}/${f.replace(/\.ts$/, '')}`);

describe('browser-safe folders', () => {
  it('are the folders the demo serves, with a rule each', () => {
    expect([...BROWSER_FOLDERS].sort()).toEqual(Object.keys(MAY_IMPORT).sort());
  });

  it('every module imports only from its allowed folders: no node: modules, no packages, no Node adapters', () => {
    const broken: string[] = [];
    for (const folder of BROWSER_FOLDERS) {
      const rule = MAY_IMPORT[folder];
      for (const mod of modulesIn(folder).filter(isBrowserModule)) {
        for (const { target, typeOnly } of imports(`${mod}.ts`)) {
          const allowed = isBrowserModule(target) && (rule.folders.includes(folderOf(target)) || (typeOnly && rule.typesOnly?.includes(folderOf(target))));
          if (!allowed) broken.push(`${mod} -> ${target}${typeOnly ? ' (types)' : ''}`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('serves every module of those folders and nothing else', () => {
    expect(modulesIn('protocol').every(isBrowserModule)).toBe(true);
    expect(modulesIn('codec/pure').every(isBrowserModule)).toBe(true);
    expect(modulesIn('clients/ts').filter((m) => !isBrowserModule(m))).toEqual(['clients/ts/decoder-node']);
    for (const path of ['codec/ffmpeg', 'codec/manifest', 'server/auth', 'clients/ts/../../server/auth', 'protocol/sub/x']) expect(isBrowserModule(path), path).toBe(false);
  });

  it('the client decoder shares the server\'s windowing code rather than a copy of it', () => {
    const targets = imports('clients/ts/decoder.ts').map((i) => i.target);
    expect(targets).toContain('codec/pure/stream-decoder');
    expect(imports('codec/pure/stream-decoder.ts').map((i) => i.target)).toContain('codec/pure/window-plan');
  });

  it('the Node decoder is the only client module that loads onnxruntime-node', () => {
    const external = (m: string) => imports(`${m}.ts`).filter((i) => !i.target.startsWith('clients/') && !i.target.startsWith('protocol/') && !i.target.startsWith('codec/pure/')).map((i) => i.target);
    expect(external('clients/ts/decoder-node')).toEqual(['node:fs/promises', 'node:path', 'onnxruntime-node']);
    for (const m of modulesIn('clients/ts').filter(isBrowserModule)) expect(external(m), m).toEqual([]);
  });
});
