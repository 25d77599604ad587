import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from '../helpers/redis-server.js';
import { MODELS, ensureBuilt, makeCorpus, readIndex, runCli, startCli, treeHashes, waitFor } from '../helpers/prep.js';

const work = mkdtempSync(join(tmpdir(), 'tokstream-prep-queue-'));
const corpus = join(work, 'corpus');
let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let port = 0;
const plan = ['--models-dir', MODELS, '--job-items', '4', '--shard-bytes', '16K'];

beforeAll(async () => {
  ensureBuilt();
  makeCorpus(corpus, 24);
  redis = await startRedis();
  port = redis.port;
});

afterAll(async () => {
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('tokstream prep enqueue / worker / merge on BullMQ', () => {
  it('two workers, one killed mid-job: the stalled job runs again and the merged output equals a local run', async () => {
    const url = `redis://127.0.0.1:${port}`;
    const shared = join(work, 'shared');
    const enqueueArgs = ['enqueue', '--input', corpus, '--out', shared, '--redis', url, '--queue', 'q1', ...plan];
    let r = await runCli(enqueueArgs);
    expect(r.code, r.stderr).toBe(0);
    r = await runCli(enqueueArgs); // deterministic job ids: enqueueing again adds nothing
    expect(r.code, r.stderr).toBe(0);
    const queue = new Queue('q1', { connection: { host: '127.0.0.1', port } });
    const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(6);

    const workerArgs = ['worker', '--redis', url, '--queue', 'q1', '--models-dir', MODELS, '--concurrency', '1', '--workers', '1', '--threads', '1', '--decoders', '2',
      '--lock-ms', '2000', '--exit-when-idle'];
    const victim = startCli(workerArgs);
    const survivor = startCli(workerArgs);
    // kill the first worker as soon as it is inside a job
    await waitFor(() => /job-\d{6} started/.test(victim.output()), 60_000, 'victim to start a job');
    const killedJob = /(job-\d{6}) started/.exec(victim.output())![1];
    victim.child.kill('SIGKILL');
    expect((await victim.done).signal).toBe('SIGKILL');
    expect(victim.output()).not.toMatch(new RegExp(`${killedJob} done`));

    const s = await survivor.done;
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(new RegExp(`${killedJob} started`)); // stalled job picked up again
    const after = await queue.getJobCounts('completed', 'failed', 'waiting', 'active');
    expect(after).toEqual({ completed: 6, failed: 0, waiting: 0, active: 0 });
    await queue.close();

    r = await runCli(['merge', '--out', shared]);
    expect(r.code, r.stderr).toBe(0);
    const keys = readIndex(shared).map((e) => e.key);
    expect(keys.length).toBe(24);
    expect(new Set(keys).size).toBe(24);

    // the same plan run on one machine gives the same bytes
    const local = join(work, 'local');
    r = await runCli(['run', '--input', corpus, '--out', local, ...plan, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(treeHashes(shared)).toEqual(treeHashes(local));
  });

  it('merge reports unfinished jobs with exit code 3', async () => {
    const url = `redis://127.0.0.1:${port}`;
    const out = join(work, 'unfinished');
    const r = await runCli(['enqueue', '--input', corpus, '--out', out, '--redis', url, '--queue', 'q2', ...plan]);
    expect(r.code, r.stderr).toBe(0);
    const m = await runCli(['merge', '--out', out]);
    expect(m.code).toBe(3);
    expect(m.stderr).toMatch(/6 of 6 jobs have no result yet/);
  });
});
