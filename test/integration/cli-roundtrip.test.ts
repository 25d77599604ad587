import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeTok, readTok } from '../../codec/tokfile.js';
import { convertAudio, readPcm, scratch, speechWav } from '../helpers/fixtures.js';

const BIN = new URL('../../bin/tokstream.js', import.meta.url).pathname;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tokstream CLI', () => {
  const source = convertAudio(speechWav('The command line tool.'), 'flac', 44100, 2);
  const tok = join(scratch, 'cli.tok');

  it('encode -> info -> decode gives the original duration at the model rate', () => {
    const enc = cli('encode', source, '-o', tok, '--codebooks', '4');
    expect(enc.code, enc.stderr).toBe(0);
    const file = readTok(readFileSync(tok));
    expect(file.complete).toBe(true);
    expect(file.header.numCodebooks).toBe(4);
    expect(file.header.modelName).toBe('default');

    const info = cli('info', tok, '--json');
    expect(info.code).toBe(0);
    const meta = JSON.parse(info.stdout);
    expect(meta).toMatchObject({ model: 'default', codebooks: 4, sampleRate: 24000, frames: file.tokens.numFrames, complete: true });

    for (const ext of ['wav', 'flac']) {
      const out = join(scratch, `cli-out.${ext}`);
      const dec = cli('decode', tok, '-o', out);
      expect(dec.code, dec.stderr).toBe(0);
      const expected = Math.round((readPcm(source, 44100).length * 24000) / 44100);
      expect(Math.abs(readPcm(out, 24000).length - expected)).toBeLessThanOrEqual(2);
    }
  });

  it('lists models with bitrates and the execution provider', () => {
    const r = cli('models', '--json');
    expect(r.code).toBe(0);
    const { models } = JSON.parse(r.stdout);
    expect(models[0]).toMatchObject({ name: 'default', provider: 'cpu', numCodebooks: 8 });
    expect(models[0].bitrates.map((b: { bitsPerSecond: number }) => b.bitsPerSecond)).toEqual([750, 1500, 2250, 3000, 3750, 4500, 5250, 6000]);
  });

  it('fails with clear messages and non-zero exit codes, leaving no partial output', () => {
    const out = join(scratch, 'never.tok');
    const cases: [string[], number, RegExp][] = [
      [['encode', join(scratch, 'missing.wav'), '-o', out], 3, /cannot read/],
      [['encode', '/etc/passwd', '-o', out], 3, /unsupported_media/],
      [['encode', source, '-o', out, '--codebooks', '9'], 2, /--codebooks must be an integer from 1 to 8/],
      [['encode', source, '-o', out, '--model', 'nope'], 4, /no model "nope"/],
      [['encode', source], 2, /missing -o/],
      [['frobnicate'], 2, /unknown command/],
      [['decode', source, '-o', join(scratch, 'x.wav')], 3, /invalid token file/],
    ];
    for (const [args, code, message] of cases) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(scratch).some((f) => f.includes('.partial-'))).toBe(false);
  });

  it('refuses to decode a token file written by a model that is not loaded', async () => {
    const file = readTok(readFileSync(tok));
    const other = join(scratch, 'other-model.tok');
    writeFileSync(other, await encodeTok({ ...file.header, modelSha256: 'ab'.repeat(32) }, file.tokens, { originalLength: file.originalLength }));
    const r = cli('decode', other, '-o', join(scratch, 'other.wav'));
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/written by model "default" with sha256 (ab){32}, and no loaded model has that hash/);
  });
});
