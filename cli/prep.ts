import { resolve } from 'node:path';
import { packageModelsDir } from '../codec/models-dir.js';
import { runLocal } from '../prep/local.js';
import { mergeRun, type MergeReport } from '../prep/merge.js';
import { execOptions, num, planOptions, str } from '../prep/options.js';
import { enqueue, runWorker } from '../prep/queue.js';
import { PREP_EXIT } from './exit.js';
import { PREP_USAGE, UsageError, parseOptions } from './usage.js';

const value = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;

/** Options that shape the output (they go into the plan). */
const PLAN_OPTIONS = {
  input: value,
  out: value,
  model: value,
  'models-dir': value,
  codebooks: value,
  vad: flag,
  'vad-threshold-db': value,
  'vad-min-sec': value,
  'vad-max-sec': value,
  'vad-min-silence-sec': value,
  'vad-pad-sec': value,
  'shard-bytes': value,
  'job-items': value,
  'job-bytes': value,
  'chunk-frames': value,
  'max-item-sec': value,
};

/** Options that only decide how fast the work goes (never the bytes). */
const EXEC_OPTIONS = {
  'models-dir': value,
  workers: value,
  threads: value,
  decoders: value,
  batch: value,
  provider: value,
  'ffmpeg-timeout-sec': value,
  'decode-group': value,
  'decode-group-mib': value,
  quiet: flag,
};

const QUEUE_OPTIONS = { redis: value, queue: value };

/** `tokstream prep <run|enqueue|worker|merge> ...`; returns the exit code (PREP_EXIT). */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const log = (m: string) => process.stderr.write(`prep: ${m}\n`);
  switch (sub) {
    case 'run': {
      const { values } = parseOptions(rest, { ...PLAN_OPTIONS, ...EXEC_OPTIONS });
      return report(await runLocal(planOptions(values), execOptions(values), log), log);
    }
    case 'enqueue': {
      const { values } = parseOptions(rest, { ...PLAN_OPTIONS, ...QUEUE_OPTIONS, attempts: value });
      await enqueue(planOptions(values), { redis: str(values, 'redis'), queue: str(values, 'queue', 'tokstream-prep'), attempts: num(values, 'attempts', 3, { min: 1, int: true }) }, log);
      return PREP_EXIT.done;
    }
    case 'worker': {
      const { values } = parseOptions(rest, { ...EXEC_OPTIONS, ...QUEUE_OPTIONS, concurrency: value, 'lock-ms': value, 'stalled-ms': value, 'max-stalled': value, 'exit-when-idle': flag });
      const lockMs = num(values, 'lock-ms', 30_000, { min: 100, int: true });
      return await runWorker(
        {
          redis: str(values, 'redis'),
          queue: str(values, 'queue', 'tokstream-prep'),
          modelsDir: str(values, 'models-dir', packageModelsDir()),
          exec: execOptions(values),
          concurrency: num(values, 'concurrency', 2, { min: 1, max: 256, int: true }),
          lockMs,
          stalledMs: num(values, 'stalled-ms', lockMs, { min: 100, int: true }),
          maxStalled: num(values, 'max-stalled', 2, { min: 0, int: true }),
          exitWhenIdle: values['exit-when-idle'] === true,
        },
        log,
      );
    }
    case 'merge': {
      const { values } = parseOptions(rest, { out: value, 'allow-partial': flag });
      return report(await mergeRun(resolve(str(values, 'out')), { allowPartial: values['allow-partial'] === true }), log);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(PREP_USAGE);
      return sub === undefined ? PREP_EXIT.usage : PREP_EXIT.done;
    default:
      throw new UsageError(`unknown prep command ${JSON.stringify(sub)}`);
  }
}

function report(r: MergeReport, log: (m: string) => void): number {
  const s = r.stats as { entries: number; hours_in: number; tokens_out: number; shards: number; inputs: { failed: number } };
  if (r.missing.length) {
    log(`${r.missing.length} of ${r.jobs} jobs have no result yet (first: ${r.missing.slice(0, 5).join(', ')}); nothing merged`);
    return PREP_EXIT.unfinished;
  }
  log(`merged ${r.jobs} jobs: ${s.entries} entries in ${s.shards} shards, ${s.hours_in.toFixed(4)} h in, ${s.tokens_out} tokens, ${s.inputs.failed} failed inputs`);
  return PREP_EXIT.done;
}
