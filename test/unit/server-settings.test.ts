import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_SERVER_CONFIG, SETTINGS, configurationPage, parseServerArgs, resolveServerConfig, serverUsage, type Setting } from '../../server/config.js';
import { resolveHttpApiConfig } from '../../server/http/config.js';
import { ROOT } from '../helpers/prep.js';

const ROWS: readonly Setting[] = SETTINGS;

function keysFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tokstream-keys-'));
  writeFileSync(join(dir, 'keys'), '# service keys\nfile-key-aaaa1111\n\nfile-key-bbbb2222\n');
  return join(dir, 'keys');
}

/** A valid value other than the row's default, as typed on the command line, and what it parses to. */
function sample(s: Setting): { text: string; value: unknown } {
  switch (s.kind) {
    case 'int':
    case 'number': {
      const v = s.kind === 'int' || s.max === undefined ? s.default + 1 : (s.default + s.max) / 2;
      return { text: String(v), value: v };
    }
    case 'bool': return { text: String(!s.default), value: !s.default };
    case 'enum': {
      const v = s.choices.find((c) => c !== s.default)!;
      return { text: v, value: v };
    }
    case 'list': {
      const v = ['sample-key-0001', 'sample-key-0001:listen:lobby'].find((e) => !s.entryProblem?.(e))!;
      return { text: v, value: [v] };
    }
    case 'string': {
      const v = s.key === 'apiKeysFile' ? keysFile() : ['sample-value', 'redis://127.0.0.1:6390/2'].find((e) => !s.problem?.(e))!;
      return { text: v, value: v };
    }
  }
}

describe('server configuration (parseServerArgs)', () => {
  it('reads flags over environment over defaults', () => {
    const c = parseServerArgs(
      ['--port', '9000', '--max-streams=12', '--api-key', 'first-key-123', '--api-key', 'second-key-45', '--provider', 'auto', '--no-demo'],
      { TOKSTREAM_PORT: '7000', TOKSTREAM_MAX_AHEAD_SEC: '2.5', TOKSTREAM_API_KEYS: 'env-key-000000' },
    );
    expect(c).toMatchObject({ port: 9000, maxStreams: 12, maxAheadSec: 2.5, apiKeys: ['first-key-123', 'second-key-45'], provider: 'auto', demo: false, noAuth: false });
    expect(c.maxFrameBytes).toBe(DEFAULT_SERVER_CONFIG.maxFrameBytes);
    expect(parseServerArgs([], { TOKSTREAM_API_KEYS: 'env-key-000000, env-key-111111' }).apiKeys).toEqual(['env-key-000000', 'env-key-111111']);
  });

  it('reads keys from a file and needs --no-auth to run without any', () => {
    const file = keysFile();
    expect(parseServerArgs(['--api-keys-file', file], {}).apiKeys).toEqual(['file-key-aaaa1111', 'file-key-bbbb2222']);
    expect(parseServerArgs(['--api-key', 'flag-key-0000'], { TOKSTREAM_API_KEYS_FILE: file }).apiKeys).toEqual(['flag-key-0000', 'file-key-aaaa1111', 'file-key-bbbb2222']);
    expect(resolveServerConfig({ apiKeysFile: file }).apiKeys).toEqual(['file-key-aaaa1111', 'file-key-bbbb2222']);
    expect(() => parseServerArgs([], {})).toThrow(/no API keys configured/);
    expect(() => parseServerArgs(['--api-keys-file', join(file, 'missing')], {})).toThrow(ConfigError);
    expect(parseServerArgs(['--no-auth'], {}).noAuth).toBe(true);
    expect(parseServerArgs([], { TOKSTREAM_NO_AUTH: '1' }).noAuth).toBe(true);
  });

  it('refuses unknown flags and bad values with a ConfigError', () => {
    const bad: string[][] = [
      ['--no-auth', '--bogus'], ['--no-auth', '--port', 'x'], ['--no-auth', '--port', '70000'], ['--no-auth', '--max-streams', '0'],
      ['--no-auth', '--bulk-share', '1.5'], ['--no-auth', '--provider', 'tpu'], ['--no-auth', '--min-chunk-ms', '500', '--max-chunk-ms', '100'],
      ['--api-key', 'short'], ['--api-key', 'has space in it'], ['--no-auth', 'stray'], ['--no-auth', '--port'],
      ['--no-auth', '--redis-url', 'localhost:6379'], ['--no-auth', '--redis-url', 'redis://x', '--redis-heartbeat-ms', '0'],
      ['--no-auth', '--max-streams', '1.5'], ['--no-auth', '--no-port'], ['--no-auth', '--demo=maybe'], ['--room-key', 'room-key-0001:talk:lobby'],
      ['--no-auth', '--http-max-jobs', '0'], ['--no-auth', '--http-spool-dir', ''],
    ];
    for (const argv of bad) expect(() => parseServerArgs(argv, {}), argv.join(' ')).toThrow(ConfigError);
    for (const [name, value] of [['TOKSTREAM_PORT', 'x'], ['TOKSTREAM_DEMO', 'maybe'], ['TOKSTREAM_HTTP_MAX_BODY_BYTES', '-1'], ['TOKSTREAM_LOG_LEVEL', 'loud']]) {
      expect(() => parseServerArgs(['--no-auth'], { [name]: value }), name).toThrow(ConfigError);
    }
  });

  it('names the flag or variable that was set, and what it accepts', () => {
    const message = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).message;
      }
      throw new Error('no ConfigError');
    };
    expect(message(() => parseServerArgs(['--no-auth', '--max-streams', '0'], {}))).toBe('--max-streams: must be an integer ≥ 1, got 0');
    expect(message(() => parseServerArgs(['--no-auth'], { TOKSTREAM_HTTP_MAX_JOBS: '0' }))).toBe('TOKSTREAM_HTTP_MAX_JOBS: must be an integer ≥ 1, got 0');
    expect(message(() => parseServerArgs(['--no-auth', '--port=70000'], {}))).toBe('--port: must be an integer 0 – 65535, got 70000');
    expect(message(() => parseServerArgs(['--no-auth', '--ready-max-busy-share', '0'], {}))).toBe('--ready-max-busy-share: must be a number > 0, ≤ 1, got 0');
    expect(message(() => parseServerArgs(['--no-auth', '--provider', 'tpu'], {}))).toBe('--provider: must be one of cpu, cuda, auto, got "tpu"');
    expect(message(() => parseServerArgs(['--no-auth'], { TOKSTREAM_PORT: 'x' }))).toBe('TOKSTREAM_PORT: "x" is not an integer 0 – 65535');
    expect(message(() => parseServerArgs(['--no-auth', '--max-stream', '3'], {}))).toMatch(/^unknown option --max-stream \(did you mean --max-streams\?\)/);
    // code that builds a config gets every name of the setting
    expect(message(() => resolveServerConfig({ noAuth: true, maxBatch: 0 }))).toBe('maxBatch (--max-batch, TOKSTREAM_MAX_BATCH): must be an integer ≥ 1, got 0');
    expect(() => parseServerArgs(['--no-auth', '--bulk-share', '2'], {})).toThrow(expect.objectContaining({ key: 'bulkShare' }));
    // a key is never echoed
    expect(message(() => parseServerArgs(['--api-key', 'secret key with spaces'], {}))).not.toContain('secret');
  });

  it('takes every setting of the table by flag and by environment variable', () => {
    for (const s of ROWS) {
      const { text, value } = sample(s);
      const byFlag = s.kind === 'bool' ? [value ? `--${s.flag}` : `--no-${s.flag}`] : [`--${s.flag}`, text];
      const viaFlag = parseServerArgs(byFlag, { TOKSTREAM_NO_AUTH: '1' }) as Record<string, unknown>;
      const viaEnv = parseServerArgs([], { TOKSTREAM_NO_AUTH: '1', [s.env]: text }) as Record<string, unknown>;
      expect(viaFlag[s.key], `--${s.flag}`).toEqual(value);
      expect(viaEnv[s.key], s.env).toEqual(value);
      expect(value, s.key).not.toEqual((DEFAULT_SERVER_CONFIG as Record<string, unknown>)[s.key]);
    }
  });

  it('has one flag, one variable and one key per setting, and valid defaults', () => {
    for (const field of ['key', 'flag', 'env'] as const) expect(new Set(ROWS.map((s) => s[field])).size, field).toBe(ROWS.length);
    for (const s of ROWS) expect(s.env, s.key).toMatch(/^TOKSTREAM_[A-Z0-9_]+$/);
    expect(resolveServerConfig({ noAuth: true })).toEqual({ ...DEFAULT_SERVER_CONFIG, noAuth: true });
    for (const s of ROWS) expect(s.default === undefined, s.key).toBe(Boolean(s.optional));
  });

  it('keeps the variables deployments already use, TOKSTREAM_HTTP_* included', () => {
    const env = { TOKSTREAM_NO_AUTH: '1', TOKSTREAM_HTTP_MAX_JOBS: '2', TOKSTREAM_HTTP_SPOOL_DIR: '/var/spool/tokstream', TOKSTREAM_HTTP_CHUNK_FRAMES: '25', TOKSTREAM_MAX_STREAMS: '8' };
    const c = parseServerArgs([], env);
    expect(c).toMatchObject({ maxConcurrentJobs: 2, spoolDir: '/var/spool/tokstream', chunkFrames: 25, maxStreams: 8 });
    // the HTTP plugin's own view of the same settings
    expect(resolveHttpApiConfig(c)).toMatchObject({ maxConcurrentJobs: 2, spoolDir: '/var/spool/tokstream', chunkFrames: 25, maxBodyBytes: 1 << 30 });
    expect(() => resolveHttpApiConfig({ chunkFrames: 0 })).toThrow(ConfigError);
  });

  it('documents every setting in --help with its environment variable', () => {
    const usage = serverUsage();
    for (const s of ROWS) {
      expect(usage, s.flag).toContain(`--${s.flag}`);
      expect(usage, s.env).toContain(`env ${s.env}]`);
    }
  });

  it('docs/configuration.md is the page the table generates (npm run docs:config)', () => {
    const committed = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
    const page = configurationPage();
    for (const s of ROWS) expect(page, s.key).toContain(`| \`${s.env}\` |`);
    expect(committed === page, 'docs/configuration.md is stale: run `npm run docs:config`').toBe(true);
  });
});
