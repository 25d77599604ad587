import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** One input unit: a file, or a [start, end) range of one. */
export interface PrepItem {
  id: string;
  /** WebDataset key: [A-Za-z0-9_-], unique in the corpus */
  key: string;
  /** absolute path read by the decoder */
  path: string;
  /** the path as the user gave it (relative to the input folder or as in the manifest) */
  source: string;
  /** seconds into the file */
  start?: number;
  end?: number;
  meta?: Record<string, unknown>;
  /** file size, for job sizing and ETA */
  bytes: number;
}

export interface PrepFailure {
  id: string;
  source: string;
  code: string;
  reason: string;
}

export interface Listing {
  items: PrepItem[];
  failures: PrepFailure[];
}

/** Longest key accepted, so `{key}-NNNN.tokens.npy` fits a 100-byte tar name. */
const MAX_KEY = 80;

/** Lists a folder tree or reads a JSONL manifest, in a deterministic order. */
export async function listInput(input: string): Promise<Listing> {
  const st = await stat(input).catch((e: Error) => {
    throw new InputError(`cannot read input ${input}: ${e.message}`);
  });
  return st.isDirectory() ? listDirectory(input) : readManifest(input);
}

export class InputError extends Error {
  override name = 'InputError';
}

async function listDirectory(root: string): Promise<Listing> {
  const abs = resolve(root);
  const files: { rel: string; bytes: number }[] = [];
  const failures: PrepFailure[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue; // hidden files and our own temp files
      const p = join(dir, e.name);
      const rel = relative(abs, p).split(sep).join('/');
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() || e.isSymbolicLink()) {
        try {
          const s = await stat(p);
          if (s.isFile()) files.push({ rel, bytes: s.size });
        } catch (err) {
          failures.push({ id: rel, source: rel, code: 'unreadable', reason: (err as Error).message });
        }
      }
    }
  }
  await walk(abs);
  const keys = uniqueKeys(files.map((f) => f.rel.replace(/\.[^./]*$/, '')), files.map((f) => f.rel));
  return { items: files.map((f, i) => ({ id: f.rel, key: keys[i], path: join(abs, f.rel), source: f.rel, bytes: f.bytes })), failures };
}

async function readManifest(path: string): Promise<Listing> {
  const base = dirname(resolve(path));
  const text = await readFile(path, 'utf8');
  const rows: Omit<PrepItem, 'key'>[] = [];
  const failures: PrepFailure[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (!line) continue;
    const where = `${path}:${n + 1}`;
    const fail = (id: string, source: string, reason: string) => failures.push({ id, source, code: 'invalid_manifest', reason: `${where}: ${reason}` });
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (e) {
      fail(`line ${n + 1}`, '', `not JSON (${(e as Error).message})`);
      continue;
    }
    if (!row || typeof row !== 'object' || Array.isArray(row)) {
      fail(`line ${n + 1}`, '', 'not a JSON object');
      continue;
    }
    const { path: p, id: rawId, start, end, ...meta } = row;
    if (typeof p !== 'string' || !p) {
      fail(typeof rawId === 'string' ? rawId : `line ${n + 1}`, '', '"path" must be a non-empty string');
      continue;
    }
    const id = rawId === undefined ? p : rawId;
    if (typeof id !== 'string' || !id) {
      fail(`line ${n + 1}`, p, '"id" must be a non-empty string');
      continue;
    }
    const bad = [start, end].find((v) => v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0));
    if (bad !== undefined) {
      fail(id, p, `"start"/"end" must be non-negative numbers of seconds, got ${JSON.stringify(bad)}`);
      continue;
    }
    if (typeof start === 'number' && typeof end === 'number' && end <= start) {
      fail(id, p, `"end" (${end}) must be after "start" (${start})`);
      continue;
    }
    if (seen.has(id)) {
      fail(id, p, `duplicate id (first on line ${seen.get(id)})`);
      continue;
    }
    seen.set(id, n + 1);
    const abs = isAbsolute(p) ? p : join(base, p);
    let bytes: number;
    try {
      const s = await stat(abs);
      if (!s.isFile()) throw new Error('not a regular file');
      bytes = s.size;
    } catch (e) {
      failures.push({ id, source: p, code: 'unreadable', reason: `${where}: ${(e as Error).message}` });
      continue;
    }
    rows.push({
      id,
      path: abs,
      source: p,
      ...(start !== undefined ? { start: start as number } : {}),
      ...(end !== undefined ? { end: end as number } : {}),
      ...(Object.keys(meta).length ? { meta } : {}),
      bytes,
    });
  }
  const keys = uniqueKeys(rows.map((r) => r.id), rows.map((r) => r.id));
  return { items: rows.map((r, i) => ({ ...r, key: keys[i] })), failures };
}

/**
 * WebDataset takes everything before the first dot of a member name as the
 * sample key, so keys keep only [A-Za-z0-9_-]. Where cleaning (or truncation)
 * makes two keys equal, a short hash of the full id tells them apart.
 */
export function uniqueKeys(stems: string[], ids: string[]): string[] {
  const clean = stems.map((s) => s.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, MAX_KEY) || '_');
  const count = new Map<string, number>();
  for (const c of clean) count.set(c, (count.get(c) ?? 0) + 1);
  return clean.map((c, i) => {
    if (count.get(c) === 1) return c;
    const h = createHash('sha256').update(ids[i]).digest('hex').slice(0, 10);
    return `${c.slice(0, MAX_KEY - 11)}-${h}`;
  });
}
