import { join } from 'node:path';
import { writeFileAtomic } from './fsutil.js';
import { addTotals, zeroTotals } from './item.js';
import { readJobResult, type JobResult } from './job.js';
import { loadPlanHeader } from './plan.js';

export interface MergeReport {
  jobs: number;
  missing: number[];
  stats: Record<string, unknown>;
}

/**
 * Joins the per-job results into index.jsonl, stats.json and shards.txt, in job
 * order. Nothing here depends on which machine ran which job, or when.
 */
export async function mergeRun(out: string, opts: { allowPartial?: boolean } = {}): Promise<MergeReport> {
  const header = await loadPlanHeader(out);
  const results: JobResult[] = [];
  const missing: number[] = [];
  for (let j = 0; j < header.jobs.length; j++) {
    const r = await readJobResult(out, j);
    if (r && r.planId === header.planId) results.push(r);
    else missing.push(j);
  }
  const totals = results.reduce((t, r) => addTotals(t, r.totals), zeroTotals());
  const shards = results.flatMap((r) => r.shards);
  const rate = header.settings.model.sampleRate;
  const listed = header.jobs.reduce((s, j) => s + j.items, 0) + header.listingFailures.length;
  const failures = [...header.listingFailures, ...results.flatMap((r) => r.failures)];
  const stats = {
    format: 'tokstream-prep-stats/1',
    planId: header.planId,
    complete: missing.length === 0,
    missing_jobs: missing,
    model: header.settings.model,
    codebooks: header.settings.codebooks,
    vad: header.settings.vad,
    inputs: { listed, ok: totals.items - totals.failed, failed: failures.length },
    entries: totals.entries,
    hours_in: totals.samplesIn / rate / 3600,
    hours_out: totals.samplesOut / rate / 3600,
    seconds_in: totals.samplesIn / rate,
    seconds_out: totals.samplesOut / rate,
    frames_out: totals.frames,
    tokens_out: totals.tokens,
    shards: shards.length,
    shard_bytes: shards.reduce((s, x) => s + x.bytes, 0),
    vad_dropped: { segments: totals.vadDropped, seconds: totals.vadDroppedSamples / rate, inputs_without_speech: totals.itemsWithoutSpeech },
    failures,
  };
  if (missing.length && !opts.allowPartial) return { jobs: header.jobs.length, missing, stats };
  await writeFileAtomic(join(out, 'index.jsonl'), results.flatMap((r) => r.index.map((e) => JSON.stringify(e) + '\n')).join(''));
  await writeFileAtomic(join(out, 'shards.txt'), shards.map((s) => `shards/${s.name}\n`).join(''));
  await writeFileAtomic(join(out, 'stats.json'), JSON.stringify(stats, null, 1) + '\n');
  return { jobs: header.jobs.length, missing, stats };
}
