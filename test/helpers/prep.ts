import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const MODELS = join(ROOT, 'models');
const CLI = join(ROOT, 'bin', 'tokstream.js');

/** The CLI runs compiled code (bin/tokstream.js -> dist/): rebuild when a source is newer than its output. */
export function ensureBuilt(): void {
  // newest .ts under each source folder, subfolders included
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(join(ROOT, dir), { withFileTypes: true }).map((e) =>
      e.isDirectory() ? newest(join(dir, e.name)) : e.name.endsWith('.ts') ? statSync(join(ROOT, dir, e.name)).mtimeMs : 0));
  const built = join(ROOT, 'dist', 'cli', 'main.js');
  const sources = ['cli', 'prep', 'codec', 'protocol', 'server', 'clients/ts'];
  const stale = !existsSync(built) || statSync(built).mtimeMs < Math.max(...sources.map(newest));
  // tsc still writes JS when unrelated files have type errors; what matters is that ours exist
  if (stale) spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
  if (!existsSync(built)) throw new Error('dist/cli/main.js missing after tsc');
}

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog',
  'A journey of a thousand miles begins with a single step',
  'She sells sea shells by the sea shore',
  'Numbers like seven and forty two are easy to say',
  'Tokens are small integers that stand for sound',
  'Every corpus needs careful preparation',
];

/**
 * Writes `n` short spoken files (espeak-ng) under dir/spk{0..3}/, in rotating
 * formats (22.05 kHz WAV, 24 kHz WAV, MP3, FLAC, Opus) so both decode paths run.
 */
export function makeCorpus(dir: string, n: number): string[] {
  const formats = ['wav', 'wav24', 'mp3', 'flac', 'ogg'];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const sub = join(dir, `spk${i % 4}`);
    mkdirSync(sub, { recursive: true });
    const text = `${SENTENCES[i % SENTENCES.length]} ${i}`;
    const fmt = formats[i % formats.length];
    const raw = join(sub, `utt${String(i).padStart(3, '0')}.wav`);
    execFileSync('espeak-ng', ['-s', String(150 + (i % 5) * 20), '-w', raw, text]);
    if (fmt === 'wav') {
      out.push(raw);
      continue;
    }
    const target = raw.replace(/\.wav$/, fmt === 'wav24' ? '.24k.wav' : `.${fmt}`);
    const args = { wav24: ['-ar', '24000'], mp3: ['-c:a', 'libmp3lame', '-b:a', '64k'], flac: ['-c:a', 'flac'], ogg: ['-c:a', 'libopus', '-b:a', '32k'] }[fmt]!;
    execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', raw, ...args, target]);
    execFileSync('rm', [raw]);
    out.push(target);
  }
  return out;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startCli(args: string[]): { child: ChildProcess; done: Promise<CliResult>; output: () => string } {
  const child = spawn(process.execPath, [CLI, 'prep', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, output: () => stdout + stderr };
}

export function runCli(args: string[]): Promise<CliResult> {
  return startCli(args).done;
}

/** Every file under dir (but work folders and locks) -> sha256, to compare whole outputs. */
export function treeHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (f.name === '.work' || f.name === '.lock') continue;
      const p = join(d, f.name);
      if (f.isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

export function readIndex(out: string): Array<Record<string, unknown> & { key: string; shard: string; frames: number; tokens: number; id: string }> {
  return readFileSync(join(out, 'index.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
