import { isCodecError } from '../codec/errors.js';
import { packageModelsDir } from '../codec/models-dir.js';
import { InputError } from './inputs.js';
import { runLocal } from './local.js';
import { mergeRun, type MergeReport } from './merge.js';
import { EXEC_OPTIONS, PLAN_OPTIONS, UsageError, execOptions, num, parseArgs, planOptions, str } from './options.js';
import { PlanMismatchError } from './plan.js';
import { enqueue, runWorker } from './queue.js';

export const PREP_USAGE = `tokstream prep: audio corpus -> WebDataset tar shards of codec tokens (docs/prep.md)

  tokstream prep run     --input <dir|manifest.jsonl> --out <dir> [plan options] [speed options]
  tokstream prep enqueue --input <dir|manifest.jsonl> --out <shared dir> --redis <url> [plan options] [--queue name] [--attempts 3]
  tokstream prep worker  --redis <url> [--queue name] [speed options] [--concurrency 2] [--lock-ms 30000] [--stalled-ms 30000]
                         [--max-stalled 2] [--exit-when-idle]
  tokstream prep merge   --out <dir> [--allow-partial]

plan options (they decide the output bytes; a rerun with other values needs a fresh --out):
  --model default  --models-dir DIR (default: the package's models/)  --codebooks N (default: all)
  --vad  [--vad-threshold-db -40 --vad-min-sec 1 --vad-max-sec 20 --vad-min-silence-sec 0.3 --vad-pad-sec 0.1]
  --shard-bytes 256M  --job-items 2000  --job-bytes 1G  --chunk-frames 250  --max-item-sec 14400
speed options (never change the output):
  --workers N (encoder sessions; CPU: one per core, at most 8)  --threads N (per session; cores / workers)
  --batch N (windows per run; CPU 1, CUDA 32)  --decoders N (inputs in flight)
  --provider cpu|cuda|auto  --ffmpeg-timeout-sec 600  --quiet
  --decode-group 64 (short files per ffmpeg process; 1: each alone)  --decode-group-mib 64 (decoded audio a group may hold)

exit codes: 0 done (failed inputs are listed in stats.json), 1 error, 2 usage, 3 merge found unfinished jobs
`;

const QUEUE_OPTIONS = { redis: 'value', queue: 'value' } as const;

/** Entry point of `tokstream prep ...`; returns the process exit code. */
export async function runPrep(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const log = (m: string) => process.stderr.write(`prep: ${m}\n`);
  try {
    switch (sub) {
      case 'run': {
        const raw = parseArgs(rest, { ...PLAN_OPTIONS, ...EXEC_OPTIONS });
        return report(await runLocal(planOptions(raw), execOptions(raw), log), log);
      }
      case 'enqueue': {
        const raw = parseArgs(rest, { ...PLAN_OPTIONS, ...QUEUE_OPTIONS, attempts: 'value' });
        await enqueue(planOptions(raw), { redis: str(raw, 'redis'), queue: str(raw, 'queue', 'tokstream-prep'), attempts: num(raw, 'attempts', 3, { min: 1, int: true }) }, log);
        return 0;
      }
      case 'worker': {
        const raw = parseArgs(rest, { ...EXEC_OPTIONS, ...QUEUE_OPTIONS, concurrency: 'value', 'lock-ms': 'value', 'stalled-ms': 'value', 'max-stalled': 'value', 'exit-when-idle': 'flag' });
        const lockMs = num(raw, 'lock-ms', 30_000, { min: 100, int: true });
        return await runWorker(
          {
            redis: str(raw, 'redis'),
            queue: str(raw, 'queue', 'tokstream-prep'),
            modelsDir: str(raw, 'models-dir', packageModelsDir()),
            exec: execOptions(raw),
            concurrency: num(raw, 'concurrency', 2, { min: 1, max: 256, int: true }),
            lockMs,
            stalledMs: num(raw, 'stalled-ms', lockMs, { min: 100, int: true }),
            maxStalled: num(raw, 'max-stalled', 2, { min: 0, int: true }),
            exitWhenIdle: raw.has('exit-when-idle'),
          },
          log,
        );
      }
      case 'merge': {
        const raw = parseArgs(rest, { out: 'value', 'allow-partial': 'flag' });
        const { resolve } = await import('node:path');
        return report(await mergeRun(resolve(str(raw, 'out')), { allowPartial: raw.has('allow-partial') }), log);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(PREP_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown prep command ${JSON.stringify(sub)}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tokstream prep: ${e.message}\n\n${PREP_USAGE}`);
      return 2;
    }
    if (e instanceof InputError || e instanceof PlanMismatchError || isCodecError(e)) {
      log(`error: ${(e as Error).message}`);
      return e instanceof InputError || e instanceof PlanMismatchError ? 2 : 1;
    }
    throw e;
  }
}

function report(r: MergeReport, log: (m: string) => void): number {
  const s = r.stats as { entries: number; hours_in: number; tokens_out: number; shards: number; inputs: { failed: number } };
  if (r.missing.length) {
    log(`${r.missing.length} of ${r.jobs} jobs have no result yet (first: ${r.missing.slice(0, 5).join(', ')}); nothing merged`);
    return 3;
  }
  log(`merged ${r.jobs} jobs: ${s.entries} entries in ${s.shards} shards, ${s.hours_in.toFixed(4)} h in, ${s.tokens_out} tokens, ${s.inputs.failed} failed inputs`);
  return 0;
}
