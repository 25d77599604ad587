import { readFileSync } from 'node:fs';
import type { ProviderChoice } from '../codec/runtime.js';
import { packageModelsDir } from '../codec/models-dir.js';
import { roomKeyProblem } from './rooms/grants.js';

/** Every limit and knob of the server; all explicit, all settable by flag or environment variable. */
export interface ServerConfig {
  host: string;
  port: number;
  modelsDir: string;
  /** Model used when `start` names none (default: "default" if present, else the first). */
  defaultModel?: string;
  provider: ProviderChoice;
  /** onnxruntime threads per op (0 = one per core). */
  intraOpThreads: number;
  interOpThreads: number;
  /** Accepted API keys; `noAuth` must be set explicitly to run without any. */
  apiKeys: string[];
  noAuth: boolean;
  /** Browser origins allowed besides the server's own; "*" allows any. */
  allowedOrigins: string[];
  /** WebSocket connections (= streams) at once. */
  maxStreams: number;
  /** Largest binary frame handled; up to 4x this gets a typed error, beyond it the socket closes (1009). */
  maxFrameBytes: number;
  maxTextBytes: number;
  /** Media a client may send ahead of the wall clock, seconds. */
  maxAheadSec: number;
  /** Media received but not yet processed, per stream, seconds. */
  maxBufferedSec: number;
  /** Bytes queued towards a client before it counts as not reading. */
  maxOutboundBytes: number;
  idleTimeoutMs: number;
  pingIntervalMs: number;
  maxProtocolErrors: number;
  defaultChunkMs: number;
  minChunkMs: number;
  maxChunkMs: number;
  /** `start` is refused while the model's realtime queue wait (moving average) is above this. */
  admissionMaxQueueMs: number;
  /** Dynamic batcher, per model. */
  maxBatch: number;
  maxBatchWaitMs: number;
  maxConcurrentRuns: number;
  /** Windows queued per model and priority class before new work is refused (overloaded). */
  maxQueuedWindows: number;
  /** Share of model time bulk (HTTP) work may take while streams are active. */
  bulkShare: number;
  /** While streams are active, a bulk-only ONNX run is sized to last about this long (ms). */
  bulkRunBudgetMs: number;
  /** Serve the browser demo at /demo/. */
  demo: boolean;
  /**
   * On SIGTERM, how long streams and HTTP jobs already running may continue (no new ones are taken)
   * before the rest are closed (docs/deploy.md, "Draining").
   */
  drainTimeoutMs: number;
  /** /readyz reports `saturated` while a model's realtime busy share (last 2 s) reaches this. */
  readyMaxBusyShare: number;
  /** /readyz reports `saturated` while a model's realtime queue wait exceeds this (ms). */
  readyMaxQueueMs: number;
  // ---- rooms (docs/protocol.md, "Rooms") ----
  /** Room-scoped keys, `<key>:<publish|listen>:<room|*>`; API keys may do everything in every room. */
  roomKeys: string[];
  /** Listener connections at once, all rooms together. */
  maxRoomListeners: number;
  /** Publishers at once in one room. */
  maxRoomPublishers: number;
  /** Bytes queued towards a listener beyond which its packets are dropped (never waited for). */
  roomMaxQueuedBytes: number;
  /** A listener that has had every packet dropped for this long is closed (slow_consumer). */
  roomStallMs: number;
  /** Redis shared by the nodes of a cluster for rooms across servers (docs/deploy.md); none: rooms are local. */
  redisUrl?: string;
  /** Period of each node's Redis heartbeat; a node silent for 3 periods is dead and its publishers end. */
  redisHeartbeatMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export const DEFAULT_SERVER_CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 8080,
  modelsDir: packageModelsDir(),
  defaultModel: undefined,
  provider: 'cpu',
  intraOpThreads: 0,
  interOpThreads: 1,
  apiKeys: [],
  noAuth: false,
  allowedOrigins: [],
  maxStreams: 64,
  maxFrameBytes: 64 * 1024,
  maxTextBytes: 4096,
  maxAheadSec: 10,
  maxBufferedSec: 10,
  maxOutboundBytes: 4 * 1024 * 1024,
  idleTimeoutMs: 30_000,
  pingIntervalMs: 10_000,
  maxProtocolErrors: 32,
  defaultChunkMs: 80,
  minChunkMs: 10,
  maxChunkMs: 2000,
  admissionMaxQueueMs: 250,
  maxBatch: 16,
  maxBatchWaitMs: 4,
  maxConcurrentRuns: 1,
  maxQueuedWindows: 4096,
  bulkShare: 0.5,
  bulkRunBudgetMs: 40,
  demo: true,
  drainTimeoutMs: 30_000,
  readyMaxBusyShare: 0.85,
  readyMaxQueueMs: 100,
  roomKeys: [],
  maxRoomListeners: 1024,
  maxRoomPublishers: 16,
  roomMaxQueuedBytes: 32 * 1024,
  roomStallMs: 10_000,
  redisUrl: undefined,
  redisHeartbeatMs: 1000,
  logLevel: 'info',
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Kind = 'int' | 'number' | 'string' | 'bool' | 'list' | 'provider' | 'level';
interface OptionSpec {
  key: keyof ServerConfig;
  flag: string;
  env: string;
  kind: Kind;
  help: string;
}

const OPTIONS: OptionSpec[] = [
  { key: 'host', flag: 'host', env: 'TOKSTREAM_HOST', kind: 'string', help: 'address to listen on' },
  { key: 'port', flag: 'port', env: 'TOKSTREAM_PORT', kind: 'int', help: 'TCP port (0 = any free port)' },
  { key: 'modelsDir', flag: 'models-dir', env: 'TOKSTREAM_MODELS_DIR', kind: 'string', help: 'folder of model folders' },
  { key: 'defaultModel', flag: 'default-model', env: 'TOKSTREAM_DEFAULT_MODEL', kind: 'string', help: 'model used when a client names none' },
  { key: 'provider', flag: 'provider', env: 'TOKSTREAM_PROVIDER', kind: 'provider', help: 'execution provider: cpu | cuda | auto' },
  { key: 'intraOpThreads', flag: 'threads', env: 'TOKSTREAM_THREADS', kind: 'int', help: 'onnxruntime intra-op threads (0 = one per core)' },
  { key: 'interOpThreads', flag: 'inter-op-threads', env: 'TOKSTREAM_INTER_OP_THREADS', kind: 'int', help: 'onnxruntime inter-op threads' },
  { key: 'apiKeys', flag: 'api-key', env: 'TOKSTREAM_API_KEYS', kind: 'list', help: 'accepted API key (repeat the flag, or comma-separated env)' },
  { key: 'noAuth', flag: 'no-auth', env: 'TOKSTREAM_NO_AUTH', kind: 'bool', help: 'accept clients without a key (local use only)' },
  { key: 'allowedOrigins', flag: 'allowed-origin', env: 'TOKSTREAM_ALLOWED_ORIGINS', kind: 'list', help: 'browser origin allowed besides the server\'s own ("*" = any)' },
  { key: 'maxStreams', flag: 'max-streams', env: 'TOKSTREAM_MAX_STREAMS', kind: 'int', help: 'WebSocket streams at once' },
  { key: 'maxFrameBytes', flag: 'max-frame-bytes', env: 'TOKSTREAM_MAX_FRAME_BYTES', kind: 'int', help: 'largest binary frame' },
  { key: 'maxTextBytes', flag: 'max-text-bytes', env: 'TOKSTREAM_MAX_TEXT_BYTES', kind: 'int', help: 'largest JSON control frame' },
  { key: 'maxAheadSec', flag: 'max-ahead-sec', env: 'TOKSTREAM_MAX_AHEAD_SEC', kind: 'number', help: 'media a client may send ahead of real time (s)' },
  { key: 'maxBufferedSec', flag: 'max-buffered-sec', env: 'TOKSTREAM_MAX_BUFFERED_SEC', kind: 'number', help: 'unprocessed media per stream (s)' },
  { key: 'maxOutboundBytes', flag: 'max-outbound-bytes', env: 'TOKSTREAM_MAX_OUTBOUND_BYTES', kind: 'int', help: 'bytes queued to a client before it counts as not reading' },
  { key: 'idleTimeoutMs', flag: 'idle-timeout-ms', env: 'TOKSTREAM_IDLE_TIMEOUT_MS', kind: 'int', help: 'close a stream silent for this long' },
  { key: 'pingIntervalMs', flag: 'ping-interval-ms', env: 'TOKSTREAM_PING_INTERVAL_MS', kind: 'int', help: 'WebSocket ping period' },
  { key: 'maxProtocolErrors', flag: 'max-protocol-errors', env: 'TOKSTREAM_MAX_PROTOCOL_ERRORS', kind: 'int', help: 'refused messages before a stream is closed' },
  { key: 'defaultChunkMs', flag: 'chunk-ms', env: 'TOKSTREAM_CHUNK_MS', kind: 'number', help: 'default audio per model step (ms)' },
  { key: 'minChunkMs', flag: 'min-chunk-ms', env: 'TOKSTREAM_MIN_CHUNK_MS', kind: 'number', help: 'smallest chunk a client may ask for' },
  { key: 'maxChunkMs', flag: 'max-chunk-ms', env: 'TOKSTREAM_MAX_CHUNK_MS', kind: 'number', help: 'largest chunk a client may ask for' },
  { key: 'admissionMaxQueueMs', flag: 'admission-max-queue-ms', env: 'TOKSTREAM_ADMISSION_MAX_QUEUE_MS', kind: 'number', help: 'refuse new streams while queue wait exceeds this' },
  { key: 'maxBatch', flag: 'max-batch', env: 'TOKSTREAM_MAX_BATCH', kind: 'int', help: 'windows per ONNX run' },
  { key: 'maxBatchWaitMs', flag: 'max-batch-wait-ms', env: 'TOKSTREAM_MAX_BATCH_WAIT_MS', kind: 'number', help: 'longest a window waits for a batch' },
  { key: 'maxConcurrentRuns', flag: 'max-concurrent-runs', env: 'TOKSTREAM_MAX_CONCURRENT_RUNS', kind: 'int', help: 'ONNX runs in flight per model' },
  { key: 'maxQueuedWindows', flag: 'max-queued-windows', env: 'TOKSTREAM_MAX_QUEUED_WINDOWS', kind: 'int', help: 'windows queued per model and class before work is refused' },
  { key: 'bulkShare', flag: 'bulk-share', env: 'TOKSTREAM_BULK_SHARE', kind: 'number', help: 'share of model time for bulk (HTTP) work while streams run' },
  { key: 'bulkRunBudgetMs', flag: 'bulk-run-budget-ms', env: 'TOKSTREAM_BULK_RUN_BUDGET_MS', kind: 'number', help: 'target duration of a bulk-only run while streams are active' },
  { key: 'demo', flag: 'demo', env: 'TOKSTREAM_DEMO', kind: 'bool', help: 'serve the browser demo at /demo/ (--no-demo to disable)' },
  { key: 'drainTimeoutMs', flag: 'drain-timeout-ms', env: 'TOKSTREAM_DRAIN_TIMEOUT_MS', kind: 'int', help: 'on SIGTERM, how long running streams and HTTP jobs may finish' },
  { key: 'readyMaxBusyShare', flag: 'ready-max-busy-share', env: 'TOKSTREAM_READY_MAX_BUSY_SHARE', kind: 'number', help: '/readyz fails while a model\'s realtime busy share reaches this' },
  { key: 'readyMaxQueueMs', flag: 'ready-max-queue-ms', env: 'TOKSTREAM_READY_MAX_QUEUE_MS', kind: 'number', help: '/readyz fails while a model\'s realtime queue wait exceeds this' },
  { key: 'roomKeys', flag: 'room-key', env: 'TOKSTREAM_ROOM_KEYS', kind: 'list', help: 'room-scoped key <key>:<publish|listen>:<room|*> (repeatable)' },
  { key: 'maxRoomListeners', flag: 'max-room-listeners', env: 'TOKSTREAM_MAX_ROOM_LISTENERS', kind: 'int', help: 'room listener connections at once (all rooms)' },
  { key: 'maxRoomPublishers', flag: 'max-room-publishers', env: 'TOKSTREAM_MAX_ROOM_PUBLISHERS', kind: 'int', help: 'publishers at once per room' },
  { key: 'roomMaxQueuedBytes', flag: 'room-max-queued-bytes', env: 'TOKSTREAM_ROOM_MAX_QUEUED_BYTES', kind: 'int', help: 'bytes queued to a listener before its packets are dropped' },
  { key: 'roomStallMs', flag: 'room-stall-ms', env: 'TOKSTREAM_ROOM_STALL_MS', kind: 'int', help: 'close a listener whose packets have all been dropped this long' },
  { key: 'redisUrl', flag: 'redis-url', env: 'TOKSTREAM_REDIS_URL', kind: 'string', help: 'Redis shared by every node: rooms across servers (redis://host:port[/db])' },
  { key: 'redisHeartbeatMs', flag: 'redis-heartbeat-ms', env: 'TOKSTREAM_REDIS_HEARTBEAT_MS', kind: 'int', help: 'node heartbeat; a dead node\'s publishers end within 5 periods' },
  { key: 'logLevel', flag: 'log-level', env: 'TOKSTREAM_LOG_LEVEL', kind: 'level', help: 'fatal | error | warn | info | debug | silent' },
];

export function serverUsage(): string {
  const lines = OPTIONS.map((o) => {
    const def = DEFAULT_SERVER_CONFIG[o.key];
    const shown = Array.isArray(def) ? (def.length ? def.join(',') : '-') : def === undefined ? '-' : String(def);
    const flag = o.kind === 'bool' ? `--${o.flag}` : `--${o.flag} <${o.kind}>`;
    return `  ${flag.padEnd(34)} ${o.help} [${shown}; env ${o.env}]`;
  });
  return `tokstream serve [options]\n\n${lines.join('\n')}\n  --api-keys-file <path>             file with one API key per line [env TOKSTREAM_API_KEYS_FILE]\n\nHTTP upload limits (body size, duration, concurrent jobs) are set by TOKSTREAM_HTTP_* variables: docs/http-api.md.\n`;
}

/**
 * Builds the server configuration from CLI flags (`--port 8080`, `--port=8080`, `--no-auth`)
 * over environment variables over defaults. Throws ConfigError on unknown flags or bad values.
 */
export function parseServerArgs(argv: string[], env: Record<string, string | undefined> = process.env): ServerConfig {
  const raw: Partial<Record<keyof ServerConfig, unknown>> = {};
  for (const o of OPTIONS) {
    const v = env[o.env];
    if (v !== undefined && v !== '') raw[o.key] = convert(o, v, `env ${o.env}`);
  }
  const fromFlags: string[] = [];
  let keysFile = env.TOKSTREAM_API_KEYS_FILE;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    if (name === 'api-keys-file') {
      keysFile = inline ?? argv[++i];
      continue;
    }
    const negated = name.startsWith('no-') && !OPTIONS.some((o) => o.flag === name);
    const spec = OPTIONS.find((o) => o.flag === (negated ? name.slice(3) : name));
    if (!spec) throw new ConfigError(`unknown option --${name}\n\n${serverUsage()}`);
    if (spec.kind === 'bool') {
      raw[spec.key] = inline === undefined ? !negated : convert(spec, inline, `--${name}`) !== negated;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    if (spec.kind === 'list') {
      // repeated flags add up; the env list is replaced by flags
      if (!fromFlags.includes(spec.flag)) raw[spec.key] = [];
      fromFlags.push(spec.flag);
      (raw[spec.key] as string[]).push(...(convert(spec, value, `--${name}`) as string[]));
    } else {
      raw[spec.key] = convert(spec, value, `--${name}`);
    }
  }
  if (keysFile) raw.apiKeys = [...((raw.apiKeys as string[]) ?? []), ...readKeysFile(keysFile)];
  return resolveServerConfig(raw as Partial<ServerConfig>);
}

/** Fills defaults and refuses inconsistent settings at start-up, not at the first client. */
export function resolveServerConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  const c: ServerConfig = { ...DEFAULT_SERVER_CONFIG };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  const positive: (keyof ServerConfig)[] = [
    'maxStreams', 'maxFrameBytes', 'maxTextBytes', 'maxAheadSec', 'maxBufferedSec', 'maxOutboundBytes', 'idleTimeoutMs',
    'pingIntervalMs', 'maxProtocolErrors', 'defaultChunkMs', 'minChunkMs', 'maxChunkMs', 'admissionMaxQueueMs', 'maxBatch', 'maxConcurrentRuns',
    'maxQueuedWindows', 'bulkRunBudgetMs', 'drainTimeoutMs', 'readyMaxQueueMs',
    'maxRoomListeners', 'maxRoomPublishers', 'roomMaxQueuedBytes', 'roomStallMs',
    'redisHeartbeatMs',
  ];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(`${k} must be a positive number, got ${String(v)}`);
  }
  for (const k of ['maxStreams', 'maxFrameBytes', 'maxTextBytes', 'maxOutboundBytes', 'maxProtocolErrors', 'maxBatch', 'maxConcurrentRuns', 'maxQueuedWindows'] as const) {
    if (!Number.isInteger(c[k])) throw new ConfigError(`${k} must be an integer, got ${c[k]}`);
  }
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw new ConfigError(`port must be 0..65535, got ${c.port}`);
  if (c.minChunkMs > c.maxChunkMs) throw new ConfigError('minChunkMs must not exceed maxChunkMs');
  if (c.defaultChunkMs < c.minChunkMs || c.defaultChunkMs > c.maxChunkMs) throw new ConfigError('defaultChunkMs must lie in [minChunkMs, maxChunkMs]');
  if (!(c.bulkShare >= 0 && c.bulkShare <= 1)) throw new ConfigError(`bulkShare must be in [0, 1], got ${c.bulkShare}`);
  if (!(c.readyMaxBusyShare > 0 && c.readyMaxBusyShare <= 1)) throw new ConfigError(`readyMaxBusyShare must be in (0, 1], got ${c.readyMaxBusyShare}`);
  if (c.maxBatchWaitMs < 0) throw new ConfigError('maxBatchWaitMs must be >= 0');
  for (const key of c.apiKeys) {
    if (!/^[A-Za-z0-9._~-]{8,256}$/.test(key)) throw new ConfigError('API keys must be 8-256 characters of A-Z a-z 0-9 . _ ~ -');
  }
  if (c.redisUrl !== undefined && !/^rediss?:\/\/[^\s]+$/.test(c.redisUrl)) throw new ConfigError("redisUrl must look like redis://[user:password@]host:port[/db] (or rediss:// for TLS)");
  const roomKeyError = c.roomKeys.map(roomKeyProblem).find((p) => p !== undefined);
  if (roomKeyError) throw new ConfigError(roomKeyError);
  if (!c.noAuth && c.apiKeys.length === 0 && c.roomKeys.length === 0) {
    throw new ConfigError('no API keys configured: pass --api-key / TOKSTREAM_API_KEYS / --api-keys-file (or --room-key), or --no-auth for local use');
  }
  return c;
}

function convert(o: OptionSpec, v: string, where: string): unknown {
  switch (o.kind) {
    case 'int': {
      const n = Number(v);
      if (!Number.isInteger(n)) throw new ConfigError(`${where}: "${v}" is not an integer`);
      return n;
    }
    case 'number': {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new ConfigError(`${where}: "${v}" is not a number`);
      return n;
    }
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(v)) return true;
      if (/^(0|false|no|off)$/i.test(v)) return false;
      throw new ConfigError(`${where}: "${v}" is not a boolean`);
    case 'list':
      return v.split(',').map((s) => s.trim()).filter(Boolean);
    case 'provider':
      if (v !== 'cpu' && v !== 'cuda' && v !== 'auto') throw new ConfigError(`${where}: provider must be cpu, cuda or auto`);
      return v;
    case 'level':
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v)) throw new ConfigError(`${where}: unknown log level "${v}"`);
      return v;
    default:
      return v;
  }
}

function readKeysFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read API keys file ${path}: ${(e as Error).message}`);
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}
