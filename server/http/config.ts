import { tmpdir } from 'node:os';

/** Limits and knobs of the batch HTTP API; every one is explicit and configurable. */
export interface HttpApiConfig {
  /** Largest upload in bytes (raw body, multipart file or .tok); beyond it: 413. */
  maxBodyBytes: number;
  /** Longest audio accepted for encoding, in seconds; beyond it: 413. */
  maxDurationSec: number;
  /** Encode/decode jobs running at once; one more gets 503 with Retry-After. */
  maxConcurrentJobs: number;
  /** Seconds put in Retry-After on 503. */
  retryAfterSec: number;
  /** Where mp4/m4a uploads are spooled (they need seeking); files are deleted after the job. */
  spoolDir: string;
  /** Largest spooled upload in bytes (also bounded by maxBodyBytes). */
  maxSpoolBytes: number;
  /** Kill an ffmpeg child (decoder or encoder) after this many ms. */
  ffmpegTimeoutMs: number;
  /** Token frames per window handed to the batcher for bulk jobs (memory per job ~ this window). */
  chunkFrames: number;
  /** Bitrates of the lossy outputs, bit/s. */
  opusBitrate: number;
  mp3Bitrate: number;
}

export const DEFAULT_HTTP_API_CONFIG: HttpApiConfig = {
  maxBodyBytes: 1 << 30,
  maxDurationSec: 4 * 3600,
  maxConcurrentJobs: 4,
  retryAfterSec: 5,
  spoolDir: tmpdir(),
  maxSpoolBytes: 1 << 30,
  ffmpegTimeoutMs: 30 * 60_000,
  chunkFrames: 50,
  opusBitrate: 48_000,
  mp3Bitrate: 64_000,
};

/** Fills defaults and refuses nonsense at start-up rather than at the first request. */
export function resolveHttpApiConfig(partial: Partial<HttpApiConfig> = {}): HttpApiConfig {
  const c = { ...DEFAULT_HTTP_API_CONFIG, ...stripUndefined(partial) };
  const positive: (keyof HttpApiConfig)[] = [
    'maxBodyBytes', 'maxDurationSec', 'maxConcurrentJobs', 'retryAfterSec', 'maxSpoolBytes', 'ffmpegTimeoutMs', 'chunkFrames', 'opusBitrate', 'mp3Bitrate',
  ];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`http config: ${k} must be a positive number, got ${String(v)}`);
  }
  for (const k of ['maxConcurrentJobs', 'retryAfterSec', 'chunkFrames'] as const) {
    if (!Number.isInteger(c[k])) throw new Error(`http config: ${k} must be an integer, got ${c[k]}`);
  }
  if (!c.spoolDir) throw new Error('http config: spoolDir must be set');
  return c;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Environment variables for each field (TOKSTREAM_HTTP_MAX_BODY_BYTES, ...), so a served instance is configurable. */
export const HTTP_API_ENV: Record<keyof HttpApiConfig, string> = {
  maxBodyBytes: 'TOKSTREAM_HTTP_MAX_BODY_BYTES',
  maxDurationSec: 'TOKSTREAM_HTTP_MAX_DURATION_SEC',
  maxConcurrentJobs: 'TOKSTREAM_HTTP_MAX_JOBS',
  retryAfterSec: 'TOKSTREAM_HTTP_RETRY_AFTER_SEC',
  spoolDir: 'TOKSTREAM_HTTP_SPOOL_DIR',
  maxSpoolBytes: 'TOKSTREAM_HTTP_MAX_SPOOL_BYTES',
  ffmpegTimeoutMs: 'TOKSTREAM_HTTP_FFMPEG_TIMEOUT_MS',
  chunkFrames: 'TOKSTREAM_HTTP_CHUNK_FRAMES',
  opusBitrate: 'TOKSTREAM_HTTP_OPUS_BITRATE',
  mp3Bitrate: 'TOKSTREAM_HTTP_MP3_BITRATE',
};

export function httpApiConfigFromEnv(env: Record<string, string | undefined>): Partial<HttpApiConfig> {
  const out: Partial<Record<keyof HttpApiConfig, string | number>> = {};
  for (const [key, name] of Object.entries(HTTP_API_ENV) as [keyof HttpApiConfig, string][]) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (key === 'spoolDir') out[key] = v;
    else {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`${name}: "${v}" is not a number`);
      out[key] = n;
    }
  }
  return out as Partial<HttpApiConfig>;
}
