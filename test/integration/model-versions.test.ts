import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelHash } from '../../codec/manifest.js';
import { discoverModels } from '../../codec/registry.js';
import { readTok } from '../../codec/tokfile.js';
import { DEFAULT_MODEL_DIR, readPcm, scratch, speechWav } from '../helpers/fixtures.js';
import { nextVersionFolder, olderVersionFolder, shippedManifest, twoVersionsModelsDir } from '../helpers/model-versions.js';
import { startTestServer } from '../helpers/stream-harness.js';

// test/fixtures/default-1.0.0.tok: espeak-ng (en-us) "Old token files keep working after the upgrade.", encoded
// by the 1.0.0 default model with `tokstream encode speech.wav -o default-1.0.0.tok` (8 codebooks, 3.1 s).
const FIXTURE = new URL('../fixtures/default-1.0.0.tok', import.meta.url).pathname;
const BIN = new URL('../../bin/tokstream.js', import.meta.url).pathname;
const fixture = readTok(readFileSync(FIXTURE));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args, '--threads', '1'], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const { dir: both, nextHash } = twoVersionsModelsDir();
const nextOnly = mkdtempSync(join(tmpdir(), 'tokstream-next-only-'));
nextVersionFolder(nextOnly);
const expectedSamples = Math.round((fixture.originalLength! * 24000) / fixture.header.originalSampleRate);

function rms(x: Float32Array): number {
  return Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
}

describe('a 1.0.0 token file after an upgrade: the file\'s model hash chooses the model', () => {
  it('the fixture names the 1.0.0 model, whose hash differs from the next version\'s', () => {
    expect(fixture.complete).toBe(true);
    expect(fixture.header.modelName).toBe('default');
    expect(fixture.header.modelSha256).toBe(modelHash(shippedManifest));
    expect(nextHash).not.toBe(fixture.header.modelSha256);
  });

  it('CLI: lists both versions and decodes the fixture with 1.0.0 although "default" is 2.0.0', () => {
    const models = cli('models', '--models-dir', both, '--json');
    expect(models.code, models.stderr).toBe(0);
    const listed = JSON.parse(models.stdout);
    expect(listed.models.map((m: { version: string }) => m.version)).toEqual(['2.0.0']);
    expect(listed.olderVersions.map((m: { version: string; hash: string }) => [m.version, m.hash])).toEqual([['1.0.0', fixture.header.modelSha256]]);
    expect(listed.broken).toEqual([]);

    const out = join(scratch, 'versions-cli.wav');
    const r = cli('decode', FIXTURE, '-o', out, '--models-dir', both);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/with model default 1\.0\.0/);
    const pcm = readPcm(out, 24000);
    expect(Math.abs(pcm.length - expectedSamples)).toBeLessThanOrEqual(2);
    expect(rms(pcm)).toBeGreaterThan(0.01);
    // naming the model is allowed, and still decodes with the version the hash names
    const named = cli('decode', FIXTURE, '-o', join(scratch, 'versions-named.wav'), '--models-dir', both, '--model', 'default');
    expect(named.code, named.stderr).toBe(0);
    expect(named.stderr).toMatch(/with model default 1\.0\.0/);
  });

  it('CLI: a file the new version writes decodes with the new version', () => {
    const tok = join(scratch, 'versions-next.tok');
    const enc = cli('encode', speechWav('Written by the new version.'), '-o', tok, '--codebooks', '2', '--models-dir', both);
    expect(enc.code, enc.stderr).toBe(0);
    expect(readTok(readFileSync(tok)).header.modelSha256).toBe(nextHash);
    const dec = cli('decode', tok, '-o', join(scratch, 'versions-next.wav'), '--models-dir', both);
    expect(dec.code, dec.stderr).toBe(0);
    expect(dec.stderr).toMatch(/with model default 2\.0\.0/);
  });

  it('CLI: without the 1.0.0 folder, a clear model_not_found error (exit 4, no stack trace, no output file)', () => {
    const out = join(scratch, 'versions-missing.wav');
    const r = cli('decode', FIXTURE, '-o', out, '--models-dir', nextOnly);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`written by model "default" with sha256 ${fixture.header.modelSha256}, and no loaded model has that hash`);
    expect(r.stderr).toContain('default 2.0.0');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(() => readFileSync(out)).toThrow();
  });

  it('folder rules: <name> or <name>-<version>, no version or graphs twice under one name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokstream-folders-'));
    symlinkSync(DEFAULT_MODEL_DIR, join(dir, 'default')); // 1.0.0 as the current version
    olderVersionFolder(dir); // default-1.0.0: the same graphs again
    mkdirSync(join(dir, 'default-3.0.0')); // a 1.0.0 manifest in a folder named for another version
    for (const f of readdirSync(DEFAULT_MODEL_DIR)) symlinkSync(join(DEFAULT_MODEL_DIR, f), join(dir, 'default-3.0.0', f));
    const registry = await discoverModels(dir, { intraOpThreads: 1, log: () => {} });
    try {
      expect(registry.versions.map((m) => m.manifest.version)).toEqual(['1.0.0']);
      expect(registry.broken.map((b) => [b.dir.split('/').pop(), b.error])).toEqual([
        ['default-1.0.0', 'same model graphs as folder default'],
        ['default-3.0.0', 'manifest name "default" version "1.0.0" fits folder "default" or "default-1.0.0", not "default-3.0.0"'],
      ]);
    } finally {
      for (const m of registry.versions) await m.release();
    }
  });

  describe('HTTP', () => {
    let server: Awaited<ReturnType<typeof startTestServer>>;
    let nextOnlyServer: Awaited<ReturnType<typeof startTestServer>>;
    beforeAll(async () => {
      server = await startTestServer({ modelsDir: both });
      nextOnlyServer = await startTestServer({ modelsDir: nextOnly });
    });
    afterAll(async () => {
      await server?.close();
      await nextOnlyServer?.close();
    });
    const decode = (url: string, query = '') =>
      fetch(`${url}/v1/decode${query}`, { method: 'POST', body: readFileSync(FIXTURE), headers: { 'content-type': 'application/vnd.tokstream.tok', accept: 'audio/wav' } });

    it('POST /v1/decode answers with 1.0.0 audio, the same as the CLI\'s', async () => {
      const res = await decode(server.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-tokstream-model')).toBe('default');
      expect(res.headers.get('x-tokstream-model-version')).toBe('1.0.0');
      const wav = join(scratch, 'versions-http.wav');
      writeFileSync(wav, Buffer.from(await res.arrayBuffer()));
      const http = readPcm(wav, 24000);
      const local = readPcm(join(scratch, 'versions-cli.wav'), 24000);
      expect(Math.abs(http.length - expectedSamples)).toBeLessThanOrEqual(2);
      const n = Math.min(http.length, local.length);
      let maxDiff = 0;
      for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(http[i] - local[i]));
      expect(maxDiff).toBeLessThan(1e-3);
      const models = await (await fetch(`${server.url}/v1/models`)).json();
      expect(models.models.map((m: { version: string }) => m.version)).toEqual(['2.0.0']);
      expect(models.olderVersions.map((m: { version: string }) => m.version)).toEqual(['1.0.0']);
    });

    it('400 model_not_found when no loaded model has the file\'s hash', async () => {
      for (const query of ['', '?model=default']) {
        const res = await decode(nextOnlyServer.url, query);
        expect(res.status).toBe(400);
        const body = await res.json();
        expect(body.error.code).toBe('model_not_found');
        expect(body.error.message).toContain(`sha256 ${fixture.header.modelSha256}, and no loaded model has that hash`);
      }
    });
  });
});
