import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { UsageError } from '../cli/usage.js';
import type { ProviderChoice } from '../codec/runtime.js';
import { packageModelsDir } from '../codec/models-dir.js';
import { DEFAULT_DECODE_GROUP, type DecodeGroupLimits } from './decode-ahead.js';
import type { JobSizing } from './plan.js';
import { DEFAULT_VAD, type VadOptions } from './vad.js';

/** Option values as `tokstream prep` parses them (cli/usage.ts): a string, true for a flag, undefined when absent. */
export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

export function str(values: OptionValues, name: string, fallback?: string): string {
  const v = values[name];
  if (typeof v === 'string') return v;
  if (fallback === undefined) throw new UsageError(`--${name} is required`);
  return fallback;
}

export function num(values: OptionValues, name: string, fallback: number, opts: { min?: number; max?: number; int?: boolean } = {}): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = parseSize(String(v));
  if (!Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || n < (opts.min ?? -Infinity) || n > (opts.max ?? Infinity)) {
    throw new UsageError(`--${name} must be ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}${opts.max !== undefined ? ` <= ${opts.max}` : ''}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Numbers with an optional K/M/G (binary) suffix, for byte sizes. */
function parseSize(s: string): number {
  const m = /^(-?\d+(?:\.\d+)?)([KMG])?i?B?$/i.exec(s.trim());
  if (!m) return NaN;
  const mult = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase() as 'K' | 'M' | 'G'] ?? 1;
  return Number(m[1]) * mult;
}

export interface PlanOptions {
  input: string;
  out: string;
  modelDir: string;
  codebooks?: number;
  vad: VadOptions | null;
  shardBytes: number;
  sizing: JobSizing;
  chunkFrames: number;
  maxItemSec: number;
}

export function planOptions(raw: OptionValues): PlanOptions {
  const vad = raw.vad === true
    ? {
        thresholdDb: num(raw, 'vad-threshold-db', DEFAULT_VAD.thresholdDb, { max: 0 }),
        minSec: num(raw, 'vad-min-sec', DEFAULT_VAD.minSec, { min: 0 }),
        maxSec: num(raw, 'vad-max-sec', DEFAULT_VAD.maxSec, { min: 0.1 }),
        minSilenceSec: num(raw, 'vad-min-silence-sec', DEFAULT_VAD.minSilenceSec, { min: 0.01 }),
        padSec: num(raw, 'vad-pad-sec', DEFAULT_VAD.padSec, { min: 0 }),
      }
    : null;
  if (vad && vad.maxSec <= vad.minSec) throw new UsageError('--vad-max-sec must be greater than --vad-min-sec');
  if (!vad && Object.entries(raw).some(([k, v]) => k.startsWith('vad-') && v !== undefined)) throw new UsageError('--vad-* options need --vad');
  return {
    input: resolve(str(raw, 'input')),
    out: resolve(str(raw, 'out')),
    modelDir: modelDir(raw),
    codebooks: raw.codebooks !== undefined ? num(raw, 'codebooks', 0, { min: 1, int: true }) : undefined,
    vad,
    shardBytes: num(raw, 'shard-bytes', 256 * 1024 ** 2, { min: 4096, int: true }),
    sizing: { jobItems: num(raw, 'job-items', 2000, { min: 1, int: true }), jobBytes: num(raw, 'job-bytes', 1024 ** 3, { min: 1, int: true }) },
    chunkFrames: num(raw, 'chunk-frames', 250, { min: 1, max: 100_000, int: true }),
    maxItemSec: num(raw, 'max-item-sec', 4 * 3600, { min: 0.1 }),
  };
}

export function modelDir(raw: OptionValues, name?: string): string {
  return resolve(str(raw, 'models-dir', packageModelsDir()), name ?? str(raw, 'model', 'default'));
}

export interface ExecOptions {
  workers: number;
  threads: number;
  decoders: number;
  batch: number;
  provider: ProviderChoice;
  ffmpegTimeoutMs: number;
  /** short files decoded per ffmpeg process (1: each alone), and the decoded bytes one such group may hold */
  decodeGroup: DecodeGroupLimits;
  quiet: boolean;
}

export function execOptions(raw: OptionValues): ExecOptions {
  const cores = availableParallelism();
  const provider = str(raw, 'provider', 'cpu');
  if (provider !== 'cpu' && provider !== 'cuda' && provider !== 'auto') throw new UsageError('--provider must be cpu, cuda or auto');
  // CPU: a single-threaded session per core outruns fewer sessions with intra-op threads (2 cores: a
  // run 7-10% faster with 2 x 1 than 1 x 2, docs/benchmarks.md); past 8, sessions get threads rather
  // than adding to what the one main thread reads and writes
  const workers = num(raw, 'workers', provider === 'cpu' ? Math.min(cores, 8) : 1, { min: 1, max: 256, int: true });
  // on CPU a window costs ~10% less alone than in a batch of 8 (bench:codec, "encoder batch"), so windows run one by one
  const batch = num(raw, 'batch', provider === 'cpu' ? 1 : 32, { min: 1, max: 4096, int: true });
  return {
    workers,
    threads: num(raw, 'threads', Math.max(1, Math.floor(cores / workers)), { min: 1, max: 1024, int: true }),
    // enough inputs in flight to fill every session's queued batches with windows of equal length
    decoders: num(raw, 'decoders', Math.max(4 * cores, 2 * workers * batch), { min: 1, max: 1024, int: true }),
    batch,
    provider,
    ffmpegTimeoutMs: num(raw, 'ffmpeg-timeout-sec', 600, { min: 1 }) * 1000,
    decodeGroup: {
      files: num(raw, 'decode-group', DEFAULT_DECODE_GROUP.files, { min: 1, max: 1000, int: true }),
      outputBytes: num(raw, 'decode-group-mib', DEFAULT_DECODE_GROUP.outputBytes / 1024 ** 2, { min: 1, max: 65536 }) * 1024 ** 2,
    },
    quiet: raw.quiet === true,
  };
}
