/**
 * README's exit-code contract as a table: 0 ok, 2 usage, 3 bad input, 4 model missing or broken
 * (1 only for bugs), each failure one line on stderr and no stack trace. Run from a folder that is
 * not the repository and without TOKSTREAM_MODELS_DIR, as an installed `tokstream` would be.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTokHeader } from '../../codec/tokfile.js';
import { DEFAULT_MODEL_DIR, speechWav } from '../helpers/fixtures.js';
import { ensureBuilt } from '../helpers/prep.js';

const BIN = new URL('../../bin/tokstream.js', import.meta.url).pathname;
const cwd = mkdtempSync(join(tmpdir(), 'tokstream-exit-'));

function cli(...args: string[]) {
  const env = { ...process.env };
  delete env.TOKSTREAM_MODELS_DIR;
  delete env.TOKSTREAM_PROVIDER;
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  ensureBuilt();
  copyFileSync(speechWav('Exit codes are a contract.'), join(cwd, 'x.wav'));
  mkdirSync(join(cwd, 'a-folder'));
  writeFileSync(join(cwd, 'a-file'), 'not a folder');
  // a model folder with its encoder graph missing
  mkdirSync(join(cwd, 'broken-models', 'default'), { recursive: true });
  for (const f of readdirSync(DEFAULT_MODEL_DIR)) if (f !== 'encoder.onnx') symlinkSync(join(DEFAULT_MODEL_DIR, f), join(cwd, 'broken-models', 'default', f));
  mkdirSync(join(cwd, 'no-models'));
  mkdirSync(join(cwd, 'bad-plan'));
  writeFileSync(join(cwd, 'bad-plan', 'plan.json'), '{bad');
}, 60_000);

afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('CLI exit codes and messages, from another folder', () => {
  it('works from any folder with the package\'s own models: encode, info, decode, models', () => {
    const enc = cli('encode', 'x.wav', '-o', 'x.tok');
    expect(enc.code, enc.stderr).toBe(0);
    expect(cli('info', 'x.tok').code).toBe(0);
    const dec = cli('decode', 'x.tok', '-o', 'y.wav');
    expect(dec.code, dec.stderr).toBe(0);
    expect(existsSync(join(cwd, 'y.wav'))).toBe(true);
    expect(cli('models').code).toBe(0);
  }, 180_000);

  it('every failure exits with its documented code and one line, no stack trace, no partial output', () => {
    const damaged = Buffer.from(readFileSync(join(cwd, 'x.tok')));
    damaged[readTokHeader(damaged).headerLength + 20] ^= 1; // inside the first chunk
    writeFileSync(join(cwd, 'damaged.tok'), damaged);
    const table: [string[], number, RegExp][] = [
      [[], 2, /Usage/],
      [['frobnicate'], 2, /unknown command/],
      [['encode', 'x.wav', '-o', 'z.tok', '--bogus'], 2, /bogus/],
      [['encode', 'x.wav'], 2, /missing -o/],
      [['encode', 'x.wav', '-o', 'z.tok', '--codebooks', 'abc'], 2, /--codebooks must be an integer from 1 to 8 .*"abc"/],
      [['encode', 'x.wav', '-o', 'z.tok', '--codebooks', '0'], 2, /from 1 to 8/],
      [['encode', 'x.wav', '-o', 'z.tok', '--codebooks', '9'], 2, /from 1 to 8/],
      [['encode', 'x.wav', '-o', 'z.tok', '--codebooks', '2.5'], 2, /from 1 to 8/],
      [['encode', 'x.wav', '-o', 'missing-folder/z.tok'], 2, /cannot write -o missing-folder\/z\.tok: its folder does not exist/],
      [['encode', 'x.wav', '-o', 'a-file/z.tok'], 2, /cannot write -o a-file\/z\.tok/],
      [['encode', 'x.wav', '-o', '/sys/z.tok'], 2, /cannot write -o \/sys\/z\.tok/],
      [['encode', 'x.wav', '-o', 'a-folder'], 2, /-o a-folder is a folder/],
      // outputs are checked before anything is read or encoded: the bad -o wins over the missing input
      [['encode', 'missing.wav', '-o', 'a-folder'], 2, /-o a-folder is a folder/],
      [['decode', 'x.tok', '-o', 'missing-folder/y.wav'], 2, /its folder does not exist/],
      [['decode', 'x.tok', '-o', 'a-folder'], 2, /output format "" not one of|is a folder/],
      [['decode', 'x.tok', '-o', 'a-folder', '--format', 'wav'], 2, /-o a-folder is a folder/],
      [['encode', 'missing.wav', '-o', 'z.tok'], 3, /invalid_argument: cannot read missing\.wav/],
      [['decode', 'missing.tok', '-o', 'y.wav'], 3, /invalid_argument: cannot read missing\.tok/],
      [['info', 'missing.tok'], 3, /cannot read missing\.tok/],
      [['info', 'a-folder'], 3, /a-folder is not a regular file/],
      [['decode', 'damaged.tok', '-o', 'z.wav'], 3, /invalid token file \(chunk_crc\)/],
      [['decode', 'x.wav', '-o', 'z.wav'], 3, /invalid token file \(bad_magic\)/],
      [['encode', 'x.wav', '-o', 'z.tok', '--models-dir', '/nonexistent'], 4, /model_not_found: cannot read the models folder \/nonexistent/],
      [['models', '--models-dir', '/nonexistent'], 4, /cannot read the models folder/],
      [['encode', 'x.wav', '-o', 'z.tok', '--models-dir', 'broken-models'], 4, /model_broken: .*encoder\.onnx: cannot read/],
      [['encode', 'x.wav', '-o', 'z.tok', '--models-dir', 'no-models'], 4, /model_not_found: no model "default" in .*no-models/],
      [['encode', 'x.wav', '-o', 'z.tok', '--model', 'nope'], 4, /no model "nope"/],
      [['prep', 'merge', '--out', 'missing-folder'], 2, /prep: error: cannot read .*missing-folder\/plan\.json \(no such file: is this the --out of a prep run\?\)/],
      [['prep', 'merge', '--out', 'a-folder'], 2, /a-folder\/plan\.json \(no such file/],
      [['prep', 'merge', '--out', 'bad-plan'], 2, /bad-plan\/plan\.json is not valid JSON/],
    ];
    for (const [args, code, message] of table) {
      const r = cli(...args);
      const what = `tokstream ${args.join(' ')}`;
      expect(r.code, `${what}\n${r.stderr}`).toBe(code);
      const text = code === 2 && args.length === 0 ? r.stdout : r.stderr;
      expect(text, what).toMatch(message);
      expect(r.stderr, what).not.toMatch(/\n\s+at /);
      if (args.length > 1 && args[0] !== 'frobnicate') expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
    }
    expect(readdirSync(cwd).filter((f) => f.startsWith('z.') || f.includes('.partial-'))).toEqual([]);
    expect(readdirSync(join(cwd, 'a-folder'))).toEqual([]);
  }, 600_000);

  it('--provider cuda without a usable GPU names the provider (exit 4); with one it runs', () => {
    const r = cli('encode', 'x.wav', '-o', 'cuda.tok', '--provider', 'cuda');
    if (r.code === 0) return; // a machine with CUDA: nothing to report
    expect(r.code, r.stderr).toBe(4);
    const ours = r.stderr.split('\n').filter((l) => l.startsWith('tokstream:'));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(/model_broken: .*CUDA execution provider unavailable/);
    expect(r.stderr).not.toMatch(/undefined/);
  }, 120_000);
});
