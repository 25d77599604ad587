import { readFileSync } from 'node:fs';
import { CROSS_RULES, SETTINGS, type ConfigOf, type NumberSetting, type ServerConfig, type Setting, type SettingRow } from './table.js';

/** A setting that cannot be used, named as the user gave it (flag, env var or config key) with what it accepts. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(message: string, readonly key?: string) {
    super(message);
  }
}

type Env = Record<string, string | undefined>;
/** Where a value came from, for messages: `--port`, `TOKSTREAM_PORT`, or unset (code). */
type Sources = Partial<Record<string, string>>;

const ROWS: readonly Setting[] = SETTINGS;
const byFlag = new Map(ROWS.map((s) => [s.flag, s]));

export const DEFAULT_SERVER_CONFIG: ServerConfig = defaultsOf(SETTINGS);

export function defaultsOf<R extends SettingRow>(rows: readonly R[]): ConfigOf<R> {
  const out: Record<string, unknown> = {};
  for (const s of rows as readonly Setting[]) if (s.default !== undefined) out[s.key] = Array.isArray(s.default) ? [...s.default] : s.default;
  return out as ConfigOf<R>;
}

/**
 * The server configuration from CLI flags (`--port 8080`, `--port=8080`, `--no-demo`, a list flag
 * repeated) over environment variables over defaults. Throws ConfigError on an unknown flag or a bad value.
 */
export function parseServerArgs(argv: string[], env: Env = process.env): ServerConfig {
  const raw: Record<string, unknown> = {};
  const sources: Sources = {};
  for (const s of ROWS) {
    const v = env[s.env];
    if (v === undefined || v === '') continue;
    raw[s.key] = fromText(s, v, s.env);
    sources[s.key] = s.env;
  }
  const listsFromFlags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const negated = !byFlag.has(name) && name.startsWith('no-') && byFlag.get(name.slice(3))?.kind === 'bool';
    const s = byFlag.get(negated ? name.slice(3) : name);
    if (!s) throw new ConfigError(unknownFlag(name));
    sources[s.key] = `--${name}`;
    if (s.kind === 'bool') {
      raw[s.key] = (inline === undefined ? true : fromText(s, inline, `--${name}`)) !== negated;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value (${expectation(s)})`, s.key);
    if (s.kind === 'list') {
      // a repeated flag adds up; flags replace the environment's list
      if (!listsFromFlags.has(s.key)) raw[s.key] = [];
      listsFromFlags.add(s.key);
      (raw[s.key] as string[]).push(...(fromText(s, value, `--${name}`) as string[]));
    } else {
      raw[s.key] = fromText(s, value, `--${name}`);
    }
  }
  return resolveServer(raw as Partial<ServerConfig>, sources);
}

/** Fills defaults and refuses bad or inconsistent settings at start-up, not at the first client. */
export function resolveServerConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  return resolveServer(partial, {});
}

/** `--api-keys-file` is read here, so code that builds a config gets the same keys as the CLI. */
function resolveServer(partial: Partial<ServerConfig>, sources: Sources): ServerConfig {
  const fromFile = partial.apiKeysFile ? readKeysFile(partial.apiKeysFile) : [];
  const withFile = fromFile.length ? { ...partial, apiKeys: [...new Set([...(partial.apiKeys ?? []), ...fromFile])] } : partial;
  const c = resolveSettings(SETTINGS, withFile, sources);
  for (const r of CROSS_RULES) {
    const problem = r.problem(c);
    if (problem) throw new ConfigError(problem);
  }
  return c;
}

/** Defaults, then each row's own check (type, range, choices, list entries). */
export function resolveSettings<R extends SettingRow>(rows: readonly R[], partial: Partial<ConfigOf<R>>, sources: Sources = {}): ConfigOf<R> {
  const c: Record<string, unknown> = defaultsOf(rows);
  const given = partial as Record<string, unknown>;
  for (const s of rows as readonly Setting[]) {
    if (given[s.key] !== undefined) c[s.key] = given[s.key];
    const problem = valueProblem(s, c[s.key]);
    if (problem) throw new ConfigError(`${label(s, sources[s.key])}: ${problem}`, s.key);
  }
  return c as ConfigOf<R>;
}

/** What a row accepts, in words: "an integer 0 – 65535", "one of cpu, cuda, auto". */
function expectation(s: Setting): string {
  switch (s.kind) {
    case 'int': return `an integer${range(s) ? ` ${range(s)}` : ''}`;
    case 'number': return `a number${range(s) ? ` ${range(s)}` : ''}`;
    case 'bool': return 'true or false (1/0, yes/no, on/off)';
    case 'enum': return `one of ${s.choices.join(', ')}`;
    case 'list': return 'comma-separated values';
    case 'string': return 'a non-empty string';
  }
}

export function range(s: NumberSetting): string {
  const low = s.above !== undefined ? `> ${s.above}` : s.min !== undefined ? `≥ ${s.min}` : '';
  if (s.max === undefined) return low;
  if (s.min !== undefined) return `${s.min} – ${s.max}`;
  return low ? `${low}, ≤ ${s.max}` : `≤ ${s.max}`;
}

function valueProblem(s: Setting, v: unknown): string | undefined {
  if (v === undefined) return s.optional ? undefined : `must be set (${expectation(s)})`;
  const bad = `must be ${expectation(s)}, got ${JSON.stringify(v)}`;
  switch (s.kind) {
    case 'int':
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v) || (s.kind === 'int' && !Number.isInteger(v))) return bad;
      if ((s.min !== undefined && v < s.min) || (s.above !== undefined && v <= s.above) || (s.max !== undefined && v > s.max)) return bad;
      return undefined;
    }
    case 'bool': return typeof v === 'boolean' ? undefined : bad;
    case 'string': return typeof v === 'string' && v !== '' ? s.problem?.(v) : bad;
    case 'enum': return typeof v === 'string' && s.choices.includes(v) ? undefined : bad;
    case 'list': {
      if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) return 'must be a list of strings';
      return s.entryProblem ? v.map(s.entryProblem).find((p) => p !== undefined) : undefined;
    }
  }
}

/** Text from a flag or env var to the row's type; range checks come later, with the defaults. */
function fromText(s: Setting, v: string, where: string): unknown {
  switch (s.kind) {
    case 'int':
    case 'number': {
      const n = v.trim() === '' ? NaN : Number(v);
      if (!Number.isFinite(n) || (s.kind === 'int' && !Number.isInteger(n))) throw new ConfigError(`${where}: "${v}" is not ${expectation(s)}`, s.key);
      return n;
    }
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(v)) return true;
      if (/^(0|false|no|off)$/i.test(v)) return false;
      throw new ConfigError(`${where}: "${v}" is not ${expectation(s)}`, s.key);
    case 'list':
      return v.split(',').map((e) => e.trim()).filter(Boolean);
    default:
      return v;
  }
}

/** The name a message uses: the one the user set, else all of them. */
function label(s: Setting, source: string | undefined): string {
  return source ?? `${s.key} (--${s.flag}, ${s.env})`;
}

function unknownFlag(name: string): string {
  const near = ROWS.map((s) => s.flag).filter((f) => editDistance(f, name) <= 2);
  return `unknown option --${name}${near.length ? ` (did you mean ${near.map((f) => `--${f}`).join(' or ')}?)` : ''}; tokstream serve --help lists them all`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

function readKeysFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read API keys file ${path}: ${(e as Error).message}`, 'apiKeysFile');
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}
