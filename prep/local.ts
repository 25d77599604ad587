import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../cli/usage.js';
import { readManifest } from '../codec/manifest.js';
import { EncoderPool } from './encoder-pool.js';
import { listInput } from './inputs.js';
import { readJobResult, runJob, type JobContext } from './job.js';
import { mergeRun, type MergeReport } from './merge.js';
import type { ExecOptions, PlanOptions } from './options.js';
import { makePlan, modelSettings, savePlan, type PlanHeader } from './plan.js';
import { PrepProgress } from './progress.js';
import { Semaphore } from './sync.js';

/** Lists the input and writes the plan into `out` (or checks it against the one there). */
export async function preparePlan(p: PlanOptions): Promise<{ header: PlanHeader; status: 'created' | 'resumed' }> {
  const manifest = await readManifest(p.modelDir);
  const codebooks = p.codebooks ?? manifest.numCodebooks;
  if (codebooks > manifest.numCodebooks) throw new UsageError(`--codebooks must be 1..${manifest.numCodebooks} for model ${manifest.name}`);
  if (manifest.codebookSize > 65536) throw new UsageError(`model ${manifest.name} has ${manifest.codebookSize} codes per codebook: more than uint16 holds`);
  const settings = { model: modelSettings(manifest), codebooks, vad: p.vad, shardBytes: p.shardBytes, chunkFrames: p.chunkFrames, maxItemSec: p.maxItemSec };
  const listing = await listInput(p.input);
  const plan = makePlan(p.input, listing, settings, p.sizing);
  const status = await savePlan(p.out, plan);
  return { header: plan.header, status };
}

export function startPool(modelDir: string, x: ExecOptions): Promise<EncoderPool> {
  return EncoderPool.start(poolOptions(modelDir, x));
}

const poolOptions = (modelDir: string, x: ExecOptions) => ({ modelDir, workers: x.workers, threads: x.threads, provider: x.provider, batch: x.batch });

/** Runs the jobs with `concurrency` at once (so one job's tail overlaps the next one's start). */
export async function runJobs(ctx: Omit<JobContext, 'onItem'>, jobs: number[], concurrency: number, progress?: PrepProgress): Promise<void> {
  const queue = [...jobs];
  const loop = async () => {
    for (let j = queue.shift(); j !== undefined; j = queue.shift()) {
      await runJob({ ...ctx, onItem: (item, o) => progress?.add(o.totals.samplesIn / ctx.header.settings.model.sampleRate, item.bytes, Boolean(o.failure)) }, j);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, loop));
}

/** `tokstream prep run`: plan, run every job here, merge. */
export async function runLocal(p: PlanOptions, x: ExecOptions, log: (m: string) => void, observe?: (pool: EncoderPool) => void): Promise<MergeReport> {
  await mkdir(p.out, { recursive: true });
  await takeLock(p.out);
  let pool: EncoderPool | undefined;
  try {
    // the sessions load while the input is listed and the first files are decoded
    pool = EncoderPool.open(await readManifest(p.modelDir), poolOptions(p.modelDir, x));
    const loaded = pool.ready;
    loaded.catch(() => {}); // awaited below, unless planning fails first
    const { header, status } = await preparePlan(p);
    const todo: number[] = [];
    for (let j = 0; j < header.jobs.length; j++) if (!(await readJobResult(p.out, j))) todo.push(j);
    log(`plan ${header.planId} ${status}: ${header.jobs.length} jobs, ${todo.length} to run, ${header.listingFailures.length} inputs refused at listing`);
    if (todo.length) {
      observe?.(pool);
      const progress = new PrepProgress(
        todo.reduce((s, j) => s + header.jobs[j].bytes, 0),
        todo.reduce((s, j) => s + header.jobs[j].items, 0),
        x.quiet ? false : undefined,
      );
      const ctx = {
        out: p.out,
        workDir: join(p.out, '.work', 'local'),
        header,
        pool,
        itemSlots: new Semaphore(x.decoders),
        itemsAhead: x.decoders,
        ffmpegTimeoutMs: x.ffmpegTimeoutMs,
        decodeGroup: x.decodeGroup,
        log,
      };
      try {
        const jobs = runJobs(ctx, todo, 2, progress);
        // a model that fails to load fails the run with its own error, once the jobs have stopped
        await loaded.catch(async (e) => {
          await jobs.catch(() => {});
          throw e;
        });
        if (pool.fallbackReason) log(`WARNING: ${pool.fallbackReason}`);
        await jobs;
      } finally {
        progress.done();
      }
      if (!x.quiet) log(progress.line());
      await rm(ctx.workDir, { recursive: true, force: true });
      await rmdir(join(p.out, '.work')).catch(() => {}); // only when no worker left anything there
    }
    await pool.close(); // the merge needs no sessions; closing twice is harmless
    return await mergeRun(p.out);
  } finally {
    await pool?.close();
    await rm(join(p.out, '.lock'), { force: true });
  }
}

/** One local run per output folder; a lock left by a killed run (dead pid) is taken over. */
async function takeLock(out: string): Promise<void> {
  const path = join(out, '.lock');
  const held = await readFile(path, 'utf8').catch(() => '');
  const pid = Number(held.trim());
  if (pid && pid !== process.pid && alive(pid)) throw new UsageError(`${out} is being written by process ${pid}`);
  await writeFile(path, `${process.pid}\n`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
