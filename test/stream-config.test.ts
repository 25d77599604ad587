import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_SERVER_CONFIG, parseServerArgs, serverUsage } from '../server/config.js';

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
    const dir = mkdtempSync(join(tmpdir(), 'tokstream-keys-'));
    writeFileSync(join(dir, 'keys'), '# service keys\nfile-key-aaaa1111\n\nfile-key-bbbb2222\n');
    expect(parseServerArgs(['--api-keys-file', join(dir, 'keys')], {}).apiKeys).toEqual(['file-key-aaaa1111', 'file-key-bbbb2222']);
    expect(() => parseServerArgs([], {})).toThrow(/no API keys configured/);
    expect(parseServerArgs(['--no-auth'], {}).noAuth).toBe(true);
    expect(parseServerArgs([], { TOKSTREAM_NO_AUTH: '1' }).noAuth).toBe(true);
  });

  it('refuses unknown flags and bad values with a ConfigError', () => {
    const bad: string[][] = [
      ['--no-auth', '--bogus'], ['--no-auth', '--port', 'x'], ['--no-auth', '--port', '70000'], ['--no-auth', '--max-streams', '0'],
      ['--no-auth', '--bulk-share', '1.5'], ['--no-auth', '--provider', 'tpu'], ['--no-auth', '--min-chunk-ms', '500', '--max-chunk-ms', '100'],
      ['--api-key', 'short'], ['--api-key', 'has space in it'], ['--no-auth', 'stray'], ['--no-auth', '--port'],
      ['--no-auth', '--redis-url', 'localhost:6379'], ['--no-auth', '--redis-url', 'redis://x', '--redis-heartbeat-ms', '0'],
    ];
    for (const argv of bad) expect(() => parseServerArgs(argv, {}), argv.join(' ')).toThrow(ConfigError);
  });

  it('documents every option with its environment variable', () => {
    const usage = serverUsage();
    for (const flag of ['--port', '--max-streams', '--max-ahead-sec', '--max-buffered-sec', '--max-outbound-bytes', '--idle-timeout-ms', '--max-batch', '--max-batch-wait-ms', '--bulk-share', '--api-key', '--allowed-origin', '--no-auth', '--provider', '--threads', '--redis-url', '--redis-heartbeat-ms']) {
      expect(usage).toContain(flag);
    }
    expect(usage).toContain('TOKSTREAM_MAX_STREAMS');
  });
});
