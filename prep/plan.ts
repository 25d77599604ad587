import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelManifest } from '../codec/manifest.js';
import { writeFileAtomic } from './fsutil.js';
import type { Listing, PrepFailure, PrepItem } from './inputs.js';
import type { VadOptions } from './vad.js';

/** Everything that decides the bytes of the output; part of the plan id. */
export interface PrepSettings {
  model: { name: string; version: string; sha256: string; sampleRate: number; hopLength: number; numCodebooks: number; codebookSize: number; causal: boolean };
  codebooks: number;
  vad: VadOptions | null;
  /** a shard part is closed before an entry that would take it past this size */
  shardBytes: number;
  /** frames per encoder window (changes results only for non-causal models) */
  chunkFrames: number;
  /** items longer than this fail with limit_exceeded */
  maxItemSec: number;
}

export interface JobSpec {
  items: number;
  bytes: number;
}

export interface PlanHeader {
  format: 'tokstream-prep-plan/1';
  planId: string;
  input: string;
  settings: PrepSettings;
  jobs: JobSpec[];
  /** inputs refused while listing (bad manifest lines, unreadable files) */
  listingFailures: PrepFailure[];
}

export interface JobSizing {
  jobItems: number;
  jobBytes: number;
}

/**
 * How prep turns files into model-rate PCM and cuts it into encoder windows. Part of the plan id,
 * so a run whose recipe changed (WAV at other rates resampled by ffmpeg's soxr, not libsamplerate;
 * final windows holding only their context) never resumes into an output written by
 * an earlier version: float rounding differs with window lengths, so tokens could differ at near-ties.
 */
const PREP_RECIPE = 'wav-native+ffmpeg-soxr/2;windows-tight-final/1';

export function modelSettings(m: ModelManifest): PrepSettings['model'] {
  return {
    name: m.name,
    version: m.version,
    sha256: m.encoder.sha256,
    sampleRate: m.sampleRate,
    hopLength: m.hopLength,
    numCodebooks: m.numCodebooks,
    codebookSize: m.codebookSize,
    causal: m.causal,
  };
}

/**
 * Splits the listing into jobs of consecutive items (at most jobItems items and,
 * past the first item, at most jobBytes of input). Jobs are the unit of
 * distribution; their shards never mix, so any job can run anywhere, any number
 * of times, and give the same files.
 */
export function makePlan(input: string, listing: Listing, settings: PrepSettings, sizing: JobSizing): { header: PlanHeader; jobItems: PrepItem[][] } {
  const jobItems: PrepItem[][] = [];
  let cur: PrepItem[] = [];
  let bytes = 0;
  for (const item of listing.items) {
    if (cur.length && (cur.length >= sizing.jobItems || bytes + item.bytes > sizing.jobBytes)) {
      jobItems.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += item.bytes;
  }
  if (cur.length) jobItems.push(cur);
  const jobs = jobItems.map((items) => ({ items: items.length, bytes: items.reduce((s, i) => s + i.bytes, 0) }));
  const h = createHash('sha256').update(JSON.stringify({ input, settings, recipe: PREP_RECIPE, failures: listing.failures }));
  for (const items of jobItems) h.update(jobFileText(items));
  const header: PlanHeader = { format: 'tokstream-prep-plan/1', planId: h.digest('hex').slice(0, 16), input, settings, jobs, listingFailures: listing.failures };
  return { header, jobItems };
}

function jobFileText(items: PrepItem[]): string {
  return items.map((i) => JSON.stringify(i) + '\n').join('');
}

export const jobName = (j: number) => `job-${String(j).padStart(6, '0')}`;

export const planPaths = (out: string) => ({
  header: join(out, 'plan.json'),
  jobsDir: join(out, 'plan'),
  job: (j: number) => join(out, 'plan', `${jobName(j)}.jsonl`),
});

export class PlanMismatchError extends Error {
  override name = 'PlanMismatchError';
}

/**
 * Writes the plan into `out`, or checks that the plan already there is the
 * same one (a resume). Job files are written before plan.json, so plan.json
 * existing means the whole plan is on disk.
 */
export async function savePlan(out: string, plan: { header: PlanHeader; jobItems: PrepItem[][] }): Promise<'created' | 'resumed'> {
  const paths = planPaths(out);
  const existing = await loadPlanHeader(out).catch(() => null);
  if (existing) {
    if (existing.planId !== plan.header.planId) {
      throw new PlanMismatchError(`${out} holds another run (plan ${existing.planId}, this one is ${plan.header.planId}): input or settings differ; use a fresh --out`);
    }
    return 'resumed';
  }
  await mkdir(paths.jobsDir, { recursive: true });
  for (let j = 0; j < plan.jobItems.length; j++) await writeFileAtomic(paths.job(j), jobFileText(plan.jobItems[j]));
  await writeFileAtomic(paths.header, JSON.stringify(plan.header, null, 1) + '\n');
  return 'created';
}

/** An --out folder without a readable plan: not a prep run, or not one this version knows. */
export class PlanReadError extends Error {
  override name = 'PlanReadError';
}

export async function loadPlanHeader(out: string): Promise<PlanHeader> {
  const path = planPaths(out).header;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file: is this the --out of a prep run?' : (e as Error).message;
    throw new PlanReadError(`cannot read ${path} (${why})`);
  }
  let header: PlanHeader;
  try {
    header = JSON.parse(text) as PlanHeader;
  } catch (e) {
    throw new PlanReadError(`${path} is not valid JSON (${(e as Error).message})`);
  }
  if (header?.format !== 'tokstream-prep-plan/1') throw new PlanReadError(`${path}: unknown format ${JSON.stringify(header?.format)}`);
  return header;
}

export async function loadJobItems(out: string, j: number): Promise<PrepItem[]> {
  const text = await readFile(planPaths(out).job(j), 'utf8');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as PrepItem);
}
