import { mkdir, open, readFile, readdir, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DecodeAhead, type DecodeGroupLimits } from './decode-ahead.js';
import type { EncoderPool } from './encoder-pool.js';
import { fsyncDir, writeFileAtomic } from './fsutil.js';
import type { PrepFailure, PrepItem } from './inputs.js';
import { addTotals, processItem, zeroTotals, type EntryOut, type IndexEntry, type ItemOutcome, type Totals } from './item.js';
import { JournalWriter, readJournal, type JournalRecord } from './journal.js';
import { jobName, loadJobItems, type PlanHeader } from './plan.js';
import { Semaphore, forEachOrdered } from './sync.js';
import { TAR_END, tarEntry } from './tar.js';

export interface JobResult {
  format: 'tokstream-prep-job/1';
  planId: string;
  job: number;
  shards: { name: string; bytes: number; entries: number }[];
  index: IndexEntry[];
  failures: PrepFailure[];
  totals: Totals;
}

export interface JobContext {
  out: string;
  /** where journals and partial shards live; must be on the same filesystem as `out` */
  workDir: string;
  header: PlanHeader;
  pool: EncoderPool;
  /** shared by all jobs of this process: items decoding/encoding at once */
  itemSlots: Semaphore;
  /** items started ahead of the one being written, per job */
  itemsAhead: number;
  ffmpegTimeoutMs: number;
  decodeGroup?: DecodeGroupLimits;
  /** journal fsync cadence: a kill loses at most this much finished work */
  checkpointMs?: number;
  onItem?: (item: PrepItem, outcome: ItemOutcome) => void;
  log?: (msg: string) => void;
}

export const outPaths = (out: string) => ({
  shards: join(out, 'shards'),
  jobs: join(out, 'jobs'),
  result: (j: number) => join(out, 'jobs', `${jobName(j)}.json`),
  shard: (j: number, part: number) => `shard-${String(j).padStart(6, '0')}-${String(part).padStart(3, '0')}.tar`,
});

export async function readJobResult(out: string, j: number): Promise<JobResult | null> {
  try {
    return JSON.parse(await readFile(outPaths(out).result(j), 'utf8')) as JobResult;
  } catch {
    return null;
  }
}

/**
 * Runs one job to its result file, resuming from its journal if a previous run
 * was killed. Items are written in plan order and parts are closed by the same
 * size rule whatever happened before, so the shards are the same bytes as an
 * uninterrupted run's.
 */
export async function runJob(ctx: JobContext, j: number): Promise<JobResult> {
  const done = await readJobResult(ctx.out, j);
  if (done && done.planId === ctx.header.planId) return done;
  const items = await loadJobItems(ctx.out, j);
  const paths = outPaths(ctx.out);
  await mkdir(paths.shards, { recursive: true });
  await mkdir(paths.jobs, { recursive: true });
  await mkdir(ctx.workDir, { recursive: true });
  const writer = await JobWriter.resume(ctx, j);
  const firstItem = writer.itemsDone.length;
  if (firstItem > 0) ctx.log?.(`${jobName(j)}: resuming after ${firstItem} of ${items.length} items`);
  let skip = writer.partialItemEntries;
  const todo = items.slice(firstItem);
  const decoder = new DecodeAhead(todo, { sampleRate: ctx.header.settings.model.sampleRate, ffmpegTimeoutMs: ctx.ffmpegTimeoutMs, group: ctx.decodeGroup });
  await forEachOrdered(
    todo,
    ctx.itemsAhead,
    (item, i) => ctx.itemSlots.use(() => processItem(item, { settings: ctx.header.settings, pool: ctx.pool, openPcm: () => decoder.open(i) })),
    async (outcome, item, i) => {
      // entries of a half-written item are already in the shard: write only the rest
      if (skip > outcome.entries.length) {
        // only a non-deterministic failure (e.g. a decoder timeout) gets here: retry rather than contradict the shard
        throw new Error(`${item.id}: gave ${outcome.entries.length} entries on resume, ${skip} were already written${outcome.failure ? ` (${outcome.failure.reason})` : ''}`);
      }
      for (const e of outcome.entries.slice(skip)) await writer.addEntry(e);
      skip = 0;
      await writer.itemDone(firstItem + i, outcome);
      ctx.onItem?.(item, outcome);
    },
  );
  const result = await writer.finish();
  await writeFileAtomic(paths.result(j), JSON.stringify(result) + '\n');
  await writer.cleanUp();
  return result;
}

class JobWriter {
  private fh: FileHandle | null = null;
  private pending: JournalRecord[] = [];
  private lastSync = performance.now();
  private readonly shards: JobResult['shards'] = [];

  private constructor(
    private readonly ctx: JobContext,
    private readonly j: number,
    private readonly journal: JournalWriter,
    readonly entries: IndexEntry[],
    readonly itemsDone: { totals: Totals; failure?: PrepFailure }[],
    readonly partialItemEntries: number,
    private part: number,
    private size: number,
    private partEntries: number,
  ) {}

  private get journalPath(): string {
    return join(this.ctx.workDir, `${jobName(this.j)}.journal`);
  }

  private partialPath(part: number): string {
    return join(this.ctx.workDir, outPaths('').shard(this.j, part) + '.partial');
  }

  /** Reopens the job where its journal ends, cutting off anything written after the last durable record. */
  static async resume(ctx: JobContext, j: number): Promise<JobWriter> {
    const journalPath = join(ctx.workDir, `${jobName(j)}.journal`);
    const state = await readJournal(journalPath);
    if (!state) return new JobWriter(ctx, j, await JournalWriter.open(journalPath), [], [], 0, -1, 0, 0);
    await truncate(journalPath, state.validBytes);
    const journal = await JournalWriter.open(journalPath);
    const w = new JobWriter(ctx, j, journal, state.entries, state.itemsDone, state.partialItemEntries, state.part, state.partSize, 0);
    for (let p = 0; p <= state.part; p++) {
      const es = state.entries.filter((e) => e.shard === outPaths('').shard(j, p)).length;
      if (p < state.part || state.partClosed) w.shards.push({ name: outPaths('').shard(j, p), bytes: 0, entries: es });
      else w.partEntries = es;
    }
    if (state.part >= 0) {
      const partial = w.partialPath(state.part);
      if (state.partClosed) {
        // killed between the 'c' record and the rename: finish the rename
        if (await exists(partial)) await w.publish(state.part);
      } else {
        const size = (await stat(partial).catch(() => null))?.size ?? -1;
        if (size < state.partSize) {
          ctx.log?.(`${jobName(j)}: partial shard shorter than its journal says; redoing the job`);
          await rm(journalPath, { force: true });
          return JobWriter.resume(ctx, j);
        }
        await truncate(partial, state.partSize);
        w.fh = await open(partial, 'r+');
      }
    }
    for (const s of w.shards) s.bytes = (await stat(join(outPaths(ctx.out).shards, s.name))).size;
    return w;
  }

  async addEntry(e: EntryOut): Promise<void> {
    const bytes = Buffer.concat([tarEntry(`${e.key}.tokens.npy`, e.npy), tarEntry(`${e.key}.json`, e.json)]);
    const bound = this.ctx.header.settings.shardBytes;
    if (this.fh && this.partEntries > 0 && this.size + bytes.length + TAR_END.length > bound) await this.closePart();
    if (!this.fh) {
      this.part++;
      this.size = 0;
      this.partEntries = 0;
      this.fh = await open(this.partialPath(this.part), 'w');
    }
    await this.fh.write(bytes, 0, bytes.length, this.size);
    this.size += bytes.length;
    this.partEntries++;
    const index: IndexEntry = { ...e.index, shard: outPaths('').shard(this.j, this.part) };
    this.entries.push(index);
    this.pending.push({ t: 'e', part: this.part, end: this.size, index });
  }

  async itemDone(i: number, outcome: ItemOutcome): Promise<void> {
    this.itemsDone.push({ totals: outcome.totals, ...(outcome.failure ? { failure: outcome.failure } : {}) });
    this.pending.push({ t: 'i', item: i, totals: outcome.totals, ...(outcome.failure ? { failure: outcome.failure } : {}) });
    if (performance.now() - this.lastSync >= (this.ctx.checkpointMs ?? 500)) await this.checkpoint();
  }

  /** Shard bytes first, then the journal lines that describe them. */
  private async checkpoint(): Promise<void> {
    if (this.fh) await this.fh.sync();
    await this.journal.append(this.pending.splice(0));
    this.lastSync = performance.now();
  }

  private async closePart(): Promise<void> {
    await this.checkpoint();
    const fh = this.fh!;
    await fh.write(TAR_END, 0, TAR_END.length, this.size);
    await fh.sync();
    await fh.close();
    this.fh = null;
    await this.journal.append([{ t: 'c', part: this.part }]);
    await this.publish(this.part);
    this.shards.push({ name: outPaths('').shard(this.j, this.part), bytes: this.size + TAR_END.length, entries: this.partEntries });
  }

  private async publish(part: number): Promise<void> {
    const dir = outPaths(this.ctx.out).shards;
    await rename(this.partialPath(part), join(dir, outPaths('').shard(this.j, part)));
    fsyncDir(dir);
  }

  async finish(): Promise<JobResult> {
    if (this.fh) await this.closePart();
    else await this.checkpoint();
    return {
      format: 'tokstream-prep-job/1',
      planId: this.ctx.header.planId,
      job: this.j,
      shards: this.shards,
      index: this.entries,
      failures: this.itemsDone.flatMap((d) => (d.failure ? [d.failure] : [])),
      totals: this.itemsDone.reduce((t, d) => addTotals(t, d.totals), zeroTotals()),
    };
  }

  /** Drops the journal and any partial file a killed run left beyond the last journaled part. */
  async cleanUp(): Promise<void> {
    const prefix = outPaths('').shard(this.j, 0).replace(/000\.tar$/, '');
    for (const f of await readdir(this.ctx.workDir)) if (f.startsWith(prefix)) await rm(join(this.ctx.workDir, f), { force: true });
    await rm(this.journalPath, { force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
