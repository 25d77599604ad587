import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in how a command was called (exit 2): an unknown option, a missing or out-of-range value. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type OptionTable = NonNullable<ParseArgsConfig['options']>;
type Strict<T extends OptionTable> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>>;

/**
 * node:util parseArgs with our own checks and one-line messages. A value-taking option takes the next
 * argument whatever it starts with (`--vad-threshold-db -40`), which strict parseArgs would refuse.
 */
export function parseOptions<T extends OptionTable>(args: string[], options: T, allowPositionals = false): Pick<Strict<T>, 'values' | 'positionals'> {
  const { values, positionals, tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional' && !allowPositionals) throw new UsageError(`unexpected argument ${JSON.stringify(t.value)}`);
    if (t.kind !== 'option') continue;
    const type = Object.hasOwn(options, t.name) ? options[t.name].type : undefined;
    if (type === undefined) throw new UsageError(`unknown option ${t.rawName}`);
    if (type === 'string' && t.value === undefined) throw new UsageError(`${t.rawName} needs a value`);
    if (type === 'boolean' && t.value !== undefined) throw new UsageError(`${t.rawName} takes no value`);
  }
  // every option is now known and of its declared type: the strict result's shape
  return { values, positionals } as Pick<Strict<T>, 'values' | 'positionals'>;
}

export const USAGE = `tokstream — audio <-> codec tokens

Usage:
  tokstream encode <audio> -o <out.tok> [--model M] [--codebooks N]
  tokstream decode <in.tok> -o <out.wav|.flac|.ogg|.mp3> [--model M]
                     (decoded by the loaded model version whose hash the file names)
  tokstream info <in.tok> [--json] [--fast]   (--fast: header and index only, chunks not checked)
  tokstream models [--json]
  tokstream serve [server options; tokstream serve --help]
  tokstream prep <enqueue|worker|merge|run> ... (tokstream prep --help)

Common options:
  --models-dir DIR   model folders (default: $TOKSTREAM_MODELS_DIR, else the package's own models/)
  --provider P       cpu | cuda | auto (default cpu; auto falls back to CPU with a warning)
  --threads N        ONNX intra-op threads (default: all cores)
`;

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
