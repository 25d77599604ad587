import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODELS, ensureBuilt, makeCorpus, readIndex, runCli, startCli, treeHashes, waitFor } from '../helpers/prep.js';

const work = mkdtempSync(join(tmpdir(), 'tokstream-prep-resume-'));
const corpus = join(work, 'corpus');
// small jobs and shards so a kill lands inside a job with parts already closed
const args = (out: string) => ['run', '--input', corpus, '--out', out, '--models-dir', MODELS, '--job-items', '8', '--shard-bytes', '16K', '--workers', '1', '--threads', '1', '--decoders', '2', '--quiet'];

beforeAll(() => {
  ensureBuilt();
  makeCorpus(corpus, 30);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A finished tar ends with two zero blocks; a torn one would not. */
function expectWholeTars(out: string): void {
  const dir = join(out, 'shards');
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) {
    expect(f).toMatch(/^shard-\d{6}-\d{3}\.tar$/);
    const buf = readFileSync(join(dir, f));
    expect(buf.length % 512).toBe(0);
    expect(buf.subarray(buf.length - 1024).every((b) => b === 0)).toBe(true);
  }
}

function journalItems(out: string): number {
  const dir = join(out, '.work', 'local');
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.journal'))
    .reduce((n, f) => n + (readFileSync(join(dir, f), 'utf8').match(/"t":"i"/g)?.length ?? 0), 0);
}

describe('tokstream prep run: determinism and kill -9 resume', () => {
  const a = join(work, 'a');

  it('gives byte-identical output for identical input and settings, whatever the speed options', async () => {
    const b = join(work, 'b');
    // speed options differ: other batch sizes, sessions, inputs in flight, and every file decoded alone
    // rather than several per ffmpeg, must not change a byte
    const [ra, rb] = [await runCli(args(a)), await runCli([...args(b), '--workers', '2', '--batch', '3', '--decoders', '5', '--decode-group', '1'])];
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const ha = treeHashes(a);
    expect(Object.keys(ha).filter((f) => f.startsWith('shards/')).length).toBeGreaterThan(6);
    expect(treeHashes(b)).toEqual(ha);
    expect(readIndex(a).length).toBe(30);
  });

  it('resumes after kill -9 (twice) to the same shards, index and stats, with nothing missing or doubled', async () => {
    const c = join(work, 'c');
    // first kill: inside a job, after the journal has recorded finished items
    const run1 = startCli(args(c));
    await waitFor(() => journalItems(c) >= 2, 60_000, 'journaled items');
    run1.child.kill('SIGKILL');
    expect((await run1.done).signal).toBe('SIGKILL');
    expect(existsSync(join(c, 'stats.json'))).toBe(false);
    expectWholeTars(c);

    const run2 = startCli(args(c));
    await waitFor(() => /resuming after \d+ of \d+ items/.test(run2.output()), 60_000, 'resume message');
    // second kill: at an arbitrary moment of the resumed run
    await new Promise((r) => setTimeout(r, 150));
    run2.child.kill('SIGKILL');
    await run2.done;
    expectWholeTars(c);

    const run3 = await runCli(args(c));
    expect(run3.code, run3.stderr).toBe(0);
    expect(treeHashes(c)).toEqual(treeHashes(a));
    const keys = readIndex(c).map((e) => e.key);
    expect(new Set(keys).size).toBe(30);
    expect(existsSync(join(c, '.work'))).toBe(false);
  });

  it('refuses to resume into a folder planned with other settings', async () => {
    const r = await runCli([...args(a), '--codebooks', '4']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/holds another run/);
  });
});
