import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../cli/usage.js';
import type { EncoderPool } from './encoder-pool.js';
import { readJobResult, runJob } from './job.js';
import { preparePlan, startPool } from './local.js';
import type { ExecOptions, PlanOptions } from './options.js';
import { jobName, loadPlanHeader, type PlanHeader } from './plan.js';
import { Semaphore } from './sync.js';

export interface PrepJobData {
  /** output folder, the same path on every machine (shared storage) */
  out: string;
  planId: string;
  job: number;
}

export interface QueueOptions {
  redis: string;
  queue: string;
}

export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--redis must be a redis:// URL, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UsageError(`--redis must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null, // BullMQ workers block on Redis and need this
  };
}

/** Job ids derive from the plan, so enqueueing the same plan twice adds nothing. */
export const jobId = (planId: string, j: number) => `${planId}-${j}`;

/** `tokstream prep enqueue`: writes the plan to shared storage and adds one queue job per plan job not done yet. */
export async function enqueue(p: PlanOptions, q: QueueOptions & { attempts: number }, log: (m: string) => void): Promise<{ planId: string; jobs: number; submitted: number }> {
  const { header, status } = await preparePlan(p);
  const todo: number[] = [];
  for (let j = 0; j < header.jobs.length; j++) if (!(await readJobResult(p.out, j))) todo.push(j);
  const queue = new Queue<PrepJobData>(q.queue, { connection: redisConnection(q.redis) });
  try {
    await queue.addBulk(
      todo.map((j) => ({
        name: 'prep',
        data: { out: p.out, planId: header.planId, job: j },
        // finished jobs stay in Redis so that re-adding the same id stays a no-op
        opts: { jobId: jobId(header.planId, j), attempts: q.attempts, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: false, removeOnFail: false },
      })),
    );
  } finally {
    await queue.close();
  }
  log(`plan ${header.planId} ${status}: ${header.jobs.length} jobs, ${todo.length} submitted to queue "${q.queue}" (already queued ids are left as they are)`);
  return { planId: header.planId, jobs: header.jobs.length, submitted: todo.length };
}

export interface WorkerOptions extends QueueOptions {
  modelsDir: string;
  exec: ExecOptions;
  /** plan jobs run at once by this process */
  concurrency: number;
  lockMs: number;
  stalledMs: number;
  maxStalled: number;
  exitWhenIdle: boolean;
}

/**
 * `tokstream prep worker`: pulls jobs and runs them into the shared output
 * folder. A job whose worker dies is moved back to waiting by BullMQ's stall
 * check and runs again elsewhere; its files come out the same bytes and are
 * renamed into place atomically, so a second run cannot duplicate anything.
 */
export async function runWorker(o: WorkerOptions, log: (m: string) => void): Promise<number> {
  const connection = redisConnection(o.redis);
  const workerId = `${hostname()}-${process.pid}`;
  const pools = new Map<string, Promise<EncoderPool>>();
  const headers = new Map<string, PlanHeader>();
  const itemSlots = new Semaphore(o.exec.decoders);
  let running = 0;

  const processor = async (job: Job<PrepJobData>) => {
    const { out, planId, job: j } = job.data;
    let header = headers.get(out);
    if (!header || header.planId !== planId) {
      header = await loadPlanHeader(out).catch((e: Error) => {
        throw new UnrecoverableError(`cannot read the plan in ${out}: ${e.message}`);
      });
      headers.set(out, header);
    }
    if (header.planId !== planId) throw new UnrecoverableError(`${out} holds plan ${header.planId}, job is for ${planId}`);
    if (!Number.isInteger(j) || j < 0 || j >= header.jobs.length) throw new UnrecoverableError(`no job ${j} in plan ${planId}`);
    const model = header.settings.model;
    const dir = join(o.modelsDir, model.name);
    let pool = pools.get(dir);
    if (!pool) {
      pool = startPool(dir, o.exec);
      pools.set(dir, pool);
      pool.catch(() => pools.delete(dir));
    }
    const p = await pool;
    if (p.manifest.encoder.sha256 !== model.sha256) throw new UnrecoverableError(`model ${dir} (encoder ${p.manifest.encoder.sha256}) is not the plan's (${model.sha256})`);
    running++;
    try {
      log(`${jobName(j)} started (attempt ${job.attemptsMade + 1})`);
      const r = await runJob(
        { out, workDir: join(out, '.work', workerId), header, pool: p, itemSlots, itemsAhead: o.exec.decoders, ffmpegTimeoutMs: o.exec.ffmpegTimeoutMs, decodeGroup: o.exec.decodeGroup, log },
        j,
      );
      log(`${jobName(j)} done: ${r.index.length} entries, ${r.failures.length} failed inputs`);
      return { entries: r.index.length, failures: r.failures.length };
    } finally {
      running--;
    }
  };

  const worker = new Worker<PrepJobData>(o.queue, processor, {
    connection,
    concurrency: o.concurrency,
    lockDuration: o.lockMs,
    stalledInterval: o.stalledMs,
    maxStalledCount: o.maxStalled,
  });
  worker.on('failed', (job, err) => log(`${job ? jobName(job.data.job) : 'job'} failed: ${err.message}`));
  worker.on('error', (err) => log(`worker error: ${err.message}`));
  const queue = new Queue(o.queue, { connection });

  return new Promise<number>((resolve) => {
    let closing = false;
    const close = async (code: number) => {
      if (closing) return;
      closing = true;
      clearInterval(idleTimer);
      await worker.close();
      await queue.close();
      for (const p of pools.values()) await p.then((x) => x.close()).catch(() => {});
      resolve(code);
    };
    // an active job of a dead worker counts as active until the stall check requeues it, so idle means really done
    const idleTimer = setInterval(async () => {
      if (!o.exitWhenIdle || running > 0 || closing) return;
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children').catch(() => null);
      if (c && Object.values(c).every((n) => n === 0)) {
        log('queue is empty; exiting');
        void close(0);
      }
    }, 1000);
    process.once('SIGINT', () => void close(0));
    process.once('SIGTERM', () => void close(0));
    log(`worker ${workerId} on queue "${o.queue}": ${o.concurrency} jobs at once, ${o.exec.workers} encoder sessions x ${o.exec.threads} threads`);
  });
}
