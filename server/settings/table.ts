import { tmpdir } from 'node:os';
import { packageModelsDir } from '../../codec/models-dir.js';
import { roomKeyProblem } from '../rooms/grants.js';

/**
 * Every setting of `tokstream serve`, one row each. A row is all there is to a setting: the config
 * object's type (ServerConfig, below), `serve --help`, the flag and environment parsing, the range
 * checks and docs/configuration.md (`npm run docs:config`) are all derived from it.
 */

export type Group = 'server' | 'auth' | 'streams' | 'chunks' | 'batcher' | 'http' | 'rooms' | 'drain';
export type Unit = 'bytes' | 'ms' | 's' | 'bit/s' | 'share';

interface Common {
  /** Property of the config object (ServerConfig). */
  key: string;
  /** `--flag`; a bool also takes `--no-flag`. */
  flag: string;
  env: string;
  group: Group;
  /** One line, shown by `--help` and in the docs. */
  help: string;
  /** More for the docs page only. */
  more?: string;
  /** May stay unset (its default is `undefined`). */
  optional?: boolean;
  /** The default as the docs show it, where the value depends on the machine. */
  shown?: string;
  /** Placeholder in `--help` (`--models-dir <dir>`); the kind or unit otherwise. */
  metavar?: string;
}
export interface NumberSetting extends Common {
  kind: 'int' | 'number';
  default: number;
  unit?: Unit;
  /** Bounds, inclusive; `above` is an exclusive lower bound. */
  min?: number;
  above?: number;
  max?: number;
}
export interface BoolSetting extends Common { kind: 'bool'; default: boolean }
export interface StringSetting extends Common {
  kind: 'string';
  default: string | undefined;
  /** What is wrong with the value, or undefined. */
  problem?: (value: string) => string | undefined;
}
export interface ListSetting extends Common {
  kind: 'list';
  default: readonly string[];
  /** What is wrong with one entry (never echoing a secret), or undefined. */
  entryProblem?: (entry: string) => string | undefined;
}
export interface EnumSetting extends Common { kind: 'enum'; choices: readonly string[]; default: string }
export type Setting = NumberSetting | BoolSetting | StringSetting | ListSetting | EnumSetting;

/** Sections of `--help` and docs/configuration.md, in this order. */
export const GROUPS: Record<Group, { title: string; intro: string }> = {
  server: { title: 'Server', intro: 'Where the server listens, which models it loads and how they run.' },
  auth: {
    title: 'Authentication',
    intro: 'Who may connect (docs/protocol.md §1, room keys §10.1). The server refuses to start with no API key and no room key unless `--no-auth` is given.',
  },
  streams: { title: 'Stream limits', intro: 'Per WebSocket stream (`/v1/stream`, docs/protocol.md §5); a client beyond a limit gets a typed error, never the whole server.' },
  chunks: { title: 'Streaming chunks and admission', intro: 'How much audio each model step of a stream covers, and when new streams are refused.' },
  batcher: { title: 'Batcher', intro: 'One dynamic batcher per model, shared by streams (realtime) and HTTP jobs (bulk); docs/http-api.md, "Fair share".' },
  http: { title: 'HTTP API', intro: 'Batch encode/decode over HTTP (docs/http-api.md, "Limits").' },
  rooms: { title: 'Rooms', intro: 'Voice-chat rooms relaying tokens to listeners (docs/protocol.md §10).' },
  drain: { title: 'Drain and readiness', intro: 'What `/readyz` reports and how SIGTERM drains (docs/deploy.md).' },
};

/** Server API keys: what clients send in `Authorization: Bearer` or the WebSocket subprotocol. */
const API_KEY = /^[A-Za-z0-9._~-]{8,256}$/;
const KEY_RULE = '8-256 characters of A-Z a-z 0-9 . _ ~ -';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const SETTINGS = [
  // ---- server
  { key: 'host', flag: 'host', env: 'TOKSTREAM_HOST', group: 'server', kind: 'string', default: '127.0.0.1', metavar: 'address',
    help: 'address to listen on', more: '`0.0.0.0` or `::` to accept other machines.' },
  { key: 'port', flag: 'port', env: 'TOKSTREAM_PORT', group: 'server', kind: 'int', default: 8080, min: 0, max: 65535,
    help: 'TCP port (0 = any free port)' },
  { key: 'modelsDir', flag: 'models-dir', env: 'TOKSTREAM_MODELS_DIR', group: 'server', kind: 'string', default: packageModelsDir(), metavar: 'dir',
    shown: "the package's `models/`", help: 'folder of model folders' },
  { key: 'defaultModel', flag: 'default-model', env: 'TOKSTREAM_DEFAULT_MODEL', group: 'server', kind: 'string', default: undefined, optional: true,
    metavar: 'name', shown: '`default` if loaded, else the first', help: 'model used when a client names none' },
  { key: 'provider', flag: 'provider', env: 'TOKSTREAM_PROVIDER', group: 'server', kind: 'enum', choices: ['cpu', 'cuda', 'auto'], default: 'cpu',
    help: 'ONNX execution provider', more: '`cuda` refuses to start without a working CUDA provider; `auto` falls back to CPU and says so.' },
  { key: 'intraOpThreads', flag: 'threads', env: 'TOKSTREAM_THREADS', group: 'server', kind: 'int', default: 0, min: 0,
    help: 'ONNX Runtime intra-op threads (0 = one per core)' },
  { key: 'interOpThreads', flag: 'inter-op-threads', env: 'TOKSTREAM_INTER_OP_THREADS', group: 'server', kind: 'int', default: 1, min: 0,
    help: 'ONNX Runtime inter-op threads' },
  { key: 'demo', flag: 'demo', env: 'TOKSTREAM_DEMO', group: 'server', kind: 'bool', default: true,
    help: 'serve the browser demo at /demo/' },
  { key: 'logLevel', flag: 'log-level', env: 'TOKSTREAM_LOG_LEVEL', group: 'server', kind: 'enum',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', metavar: 'level', help: 'log level (JSON lines on stdout)' },

  // ---- auth
  { key: 'apiKeys', flag: 'api-key', env: 'TOKSTREAM_API_KEYS', group: 'auth', kind: 'list', default: [], metavar: 'key',
    entryProblem: (k: string) => (API_KEY.test(k) ? undefined : `API keys must be ${KEY_RULE}`),
    help: 'accepted API key; may do everything, in every room', more: `Each ${KEY_RULE}.` },
  { key: 'apiKeysFile', flag: 'api-keys-file', env: 'TOKSTREAM_API_KEYS_FILE', group: 'auth', kind: 'string', default: undefined, optional: true,
    metavar: 'path', help: 'file with one API key per line (# comments), added to --api-key', more: 'Read once at start-up.' },
  { key: 'noAuth', flag: 'no-auth', env: 'TOKSTREAM_NO_AUTH', group: 'auth', kind: 'bool', default: false,
    help: 'accept clients without a key (local use only)' },
  { key: 'allowedOrigins', flag: 'allowed-origin', env: 'TOKSTREAM_ALLOWED_ORIGINS', group: 'auth', kind: 'list', default: [], metavar: 'origin',
    help: 'browser origin allowed besides the server\'s own ("*" = any)' },
  { key: 'roomKeys', flag: 'room-key', env: 'TOKSTREAM_ROOM_KEYS', group: 'auth', kind: 'list', default: [], metavar: 'grant',
    entryProblem: roomKeyProblem, help: 'room-scoped key `<key>:<publish|listen>:<room|*>`',
    more: 'One key may carry several grants; `publish` implies `listen`.' },

  // ---- streams
  { key: 'maxStreams', flag: 'max-streams', env: 'TOKSTREAM_MAX_STREAMS', group: 'streams', kind: 'int', default: 64, min: 1,
    help: 'WebSocket streams at once' },
  { key: 'maxFrameBytes', flag: 'max-frame-bytes', env: 'TOKSTREAM_MAX_FRAME_BYTES', group: 'streams', kind: 'int', default: 64 * KiB, min: 1, unit: 'bytes',
    help: 'largest binary frame handled', more: 'Up to 4× this gets a typed error; beyond it the socket closes (1009).' },
  { key: 'maxTextBytes', flag: 'max-text-bytes', env: 'TOKSTREAM_MAX_TEXT_BYTES', group: 'streams', kind: 'int', default: 4096, min: 1, unit: 'bytes',
    help: 'largest JSON control frame' },
  { key: 'maxAheadSec', flag: 'max-ahead-sec', env: 'TOKSTREAM_MAX_AHEAD_SEC', group: 'streams', kind: 'number', default: 10, above: 0, unit: 's',
    help: 'media a client may send ahead of the wall clock' },
  { key: 'maxBufferedSec', flag: 'max-buffered-sec', env: 'TOKSTREAM_MAX_BUFFERED_SEC', group: 'streams', kind: 'number', default: 10, above: 0, unit: 's',
    help: 'media received but not yet processed, per stream' },
  { key: 'maxOutboundBytes', flag: 'max-outbound-bytes', env: 'TOKSTREAM_MAX_OUTBOUND_BYTES', group: 'streams', kind: 'int', default: 4 * MiB, min: 1, unit: 'bytes',
    help: 'bytes queued to a client before it counts as not reading' },
  { key: 'idleTimeoutMs', flag: 'idle-timeout-ms', env: 'TOKSTREAM_IDLE_TIMEOUT_MS', group: 'streams', kind: 'int', default: 30_000, min: 1, unit: 'ms',
    help: 'close a stream silent for this long' },
  { key: 'pingIntervalMs', flag: 'ping-interval-ms', env: 'TOKSTREAM_PING_INTERVAL_MS', group: 'streams', kind: 'int', default: 10_000, min: 1, unit: 'ms',
    help: 'WebSocket ping period' },
  { key: 'maxProtocolErrors', flag: 'max-protocol-errors', env: 'TOKSTREAM_MAX_PROTOCOL_ERRORS', group: 'streams', kind: 'int', default: 32, min: 1,
    help: 'refused messages before a stream is closed' },

  // ---- chunks
  { key: 'defaultChunkMs', flag: 'chunk-ms', env: 'TOKSTREAM_CHUNK_MS', group: 'chunks', kind: 'number', default: 80, above: 0, unit: 'ms',
    help: 'audio per model step when `start` names none' },
  { key: 'minChunkMs', flag: 'min-chunk-ms', env: 'TOKSTREAM_MIN_CHUNK_MS', group: 'chunks', kind: 'number', default: 10, above: 0, unit: 'ms',
    help: 'smallest chunk a client may ask for' },
  { key: 'maxChunkMs', flag: 'max-chunk-ms', env: 'TOKSTREAM_MAX_CHUNK_MS', group: 'chunks', kind: 'number', default: 2000, above: 0, unit: 'ms',
    help: 'largest chunk a client may ask for' },
  { key: 'admissionMaxQueueMs', flag: 'admission-max-queue-ms', env: 'TOKSTREAM_ADMISSION_MAX_QUEUE_MS', group: 'chunks', kind: 'number', default: 250, above: 0, unit: 'ms',
    help: 'refuse `start` (overloaded) while the model\'s realtime queue wait exceeds this' },

  // ---- batcher
  { key: 'maxBatch', flag: 'max-batch', env: 'TOKSTREAM_MAX_BATCH', group: 'batcher', kind: 'int', default: 16, min: 1,
    help: 'windows per ONNX run' },
  { key: 'maxBatchWaitMs', flag: 'max-batch-wait-ms', env: 'TOKSTREAM_MAX_BATCH_WAIT_MS', group: 'batcher', kind: 'number', default: 4, min: 0, unit: 'ms',
    help: 'longest a window waits for a batch to fill' },
  { key: 'maxConcurrentRuns', flag: 'max-concurrent-runs', env: 'TOKSTREAM_MAX_CONCURRENT_RUNS', group: 'batcher', kind: 'int', default: 1, min: 1,
    help: 'ONNX runs in flight per model, each on a session thread of its own' },
  { key: 'maxQueuedWindows', flag: 'max-queued-windows', env: 'TOKSTREAM_MAX_QUEUED_WINDOWS', group: 'batcher', kind: 'int', default: 4096, min: 1,
    help: 'windows queued per model and priority class before work is refused (overloaded)' },
  { key: 'bulkShare', flag: 'bulk-share', env: 'TOKSTREAM_BULK_SHARE', group: 'batcher', kind: 'number', default: 0.5, min: 0, max: 1, unit: 'share',
    help: 'share of model time bulk (HTTP) work may take while streams are active' },
  { key: 'bulkRunBudgetMs', flag: 'bulk-run-budget-ms', env: 'TOKSTREAM_BULK_RUN_BUDGET_MS', group: 'batcher', kind: 'number', default: 40, above: 0, unit: 'ms',
    help: 'while streams are active, a bulk-only run is sized to last about this long' },

  // ---- http (the environment names predate the flags: deployments use them)
  { key: 'maxBodyBytes', flag: 'http-max-body-bytes', env: 'TOKSTREAM_HTTP_MAX_BODY_BYTES', group: 'http', kind: 'int', default: GiB, min: 1, unit: 'bytes',
    help: 'largest upload: raw body, multipart file or .tok (413 beyond)' },
  { key: 'maxDurationSec', flag: 'http-max-duration-sec', env: 'TOKSTREAM_HTTP_MAX_DURATION_SEC', group: 'http', kind: 'number', default: 4 * 3600, above: 0, unit: 's',
    help: 'longest audio to encode, or in a .tok to decode (413 beyond)' },
  { key: 'maxConcurrentJobs', flag: 'http-max-jobs', env: 'TOKSTREAM_HTTP_MAX_JOBS', group: 'http', kind: 'int', default: 4, min: 1,
    help: 'encode + decode jobs at once (503 with Retry-After beyond)' },
  { key: 'retryAfterSec', flag: 'http-retry-after-sec', env: 'TOKSTREAM_HTTP_RETRY_AFTER_SEC', group: 'http', kind: 'int', default: 5, min: 1, unit: 's',
    help: 'Retry-After sent with 503' },
  { key: 'spoolDir', flag: 'http-spool-dir', env: 'TOKSTREAM_HTTP_SPOOL_DIR', group: 'http', kind: 'string', default: tmpdir(), metavar: 'dir',
    shown: 'the OS temp folder', help: 'where mp4/m4a uploads are spooled (they need seeking); deleted after the job' },
  { key: 'maxSpoolBytes', flag: 'http-max-spool-bytes', env: 'TOKSTREAM_HTTP_MAX_SPOOL_BYTES', group: 'http', kind: 'int', default: GiB, min: 1, unit: 'bytes',
    help: 'largest spooled upload (413 beyond; --http-max-body-bytes applies too)' },
  { key: 'ffmpegTimeoutMs', flag: 'http-ffmpeg-timeout-ms', env: 'TOKSTREAM_HTTP_FFMPEG_TIMEOUT_MS', group: 'http', kind: 'int', default: 30 * 60_000, min: 1, unit: 'ms',
    help: 'kill an ffmpeg decoder or encoder child after this long (504)' },
  { key: 'chunkFrames', flag: 'http-chunk-frames', env: 'TOKSTREAM_HTTP_CHUNK_FRAMES', group: 'http', kind: 'int', default: 50, min: 1,
    help: 'token frames per window a job hands the batcher (memory per job ~ this window)' },
  { key: 'opusBitrate', flag: 'http-opus-bitrate', env: 'TOKSTREAM_HTTP_OPUS_BITRATE', group: 'http', kind: 'int', default: 48_000, min: 1, unit: 'bit/s',
    help: 'bitrate of Ogg/Opus output' },
  { key: 'mp3Bitrate', flag: 'http-mp3-bitrate', env: 'TOKSTREAM_HTTP_MP3_BITRATE', group: 'http', kind: 'int', default: 64_000, min: 1, unit: 'bit/s',
    help: 'bitrate of MP3 output' },

  // ---- rooms
  { key: 'maxRoomListeners', flag: 'max-room-listeners', env: 'TOKSTREAM_MAX_ROOM_LISTENERS', group: 'rooms', kind: 'int', default: 1024, min: 1,
    help: 'listener connections at once, all rooms together' },
  { key: 'maxRoomPublishers', flag: 'max-room-publishers', env: 'TOKSTREAM_MAX_ROOM_PUBLISHERS', group: 'rooms', kind: 'int', default: 16, min: 1,
    help: 'publishers at once in one room' },
  { key: 'roomMaxQueuedBytes', flag: 'room-max-queued-bytes', env: 'TOKSTREAM_ROOM_MAX_QUEUED_BYTES', group: 'rooms', kind: 'int', default: 32 * KiB, min: 1, unit: 'bytes',
    help: 'bytes queued to a listener beyond which its packets are dropped (never waited for)' },
  { key: 'roomStallMs', flag: 'room-stall-ms', env: 'TOKSTREAM_ROOM_STALL_MS', group: 'rooms', kind: 'int', default: 10_000, min: 1, unit: 'ms',
    help: 'close a listener (slow_consumer) whose packets have all been dropped this long' },
  { key: 'redisUrl', flag: 'redis-url', env: 'TOKSTREAM_REDIS_URL', group: 'rooms', kind: 'string', default: undefined, optional: true, metavar: 'url',
    problem: (v: string) => (/^rediss?:\/\/[^\s]+$/.test(v) ? undefined : 'must look like redis://[user:password@]host:port[/db] (or rediss:// for TLS)'),
    help: 'Redis shared by every node: rooms across servers (docs/deploy.md); unset: rooms are local to this server' },
  { key: 'redisHeartbeatMs', flag: 'redis-heartbeat-ms', env: 'TOKSTREAM_REDIS_HEARTBEAT_MS', group: 'rooms', kind: 'int', default: 1000, min: 1, unit: 'ms',
    help: "node heartbeat in Redis; a dead node's publishers end within 5 periods" },

  // ---- drain
  { key: 'drainTimeoutMs', flag: 'drain-timeout-ms', env: 'TOKSTREAM_DRAIN_TIMEOUT_MS', group: 'drain', kind: 'int', default: 30_000, min: 1, unit: 'ms',
    help: 'on SIGTERM, how long running streams and HTTP jobs may finish (no new ones are taken)' },
  { key: 'readyMaxBusyShare', flag: 'ready-max-busy-share', env: 'TOKSTREAM_READY_MAX_BUSY_SHARE', group: 'drain', kind: 'number', default: 0.85, above: 0, max: 1, unit: 'share',
    help: '/readyz reports saturated while a model\'s realtime busy share (last 2 s) reaches this' },
  { key: 'readyMaxQueueMs', flag: 'ready-max-queue-ms', env: 'TOKSTREAM_READY_MAX_QUEUE_MS', group: 'drain', kind: 'number', default: 100, above: 0, unit: 'ms',
    help: '/readyz reports saturated while a model\'s realtime queue wait exceeds this' },
] as const satisfies readonly Setting[];

export type SettingRow = (typeof SETTINGS)[number];
export type SettingKey = SettingRow['key'];

type ValueOf<S> = S extends { kind: 'int' | 'number' } ? number
  : S extends { kind: 'bool' } ? boolean
  : S extends { kind: 'string' } ? string
  : S extends { kind: 'list' } ? string[]
  : S extends { kind: 'enum'; choices: readonly (infer C)[] } ? C
  : never;
type Flatten<T> = { [K in keyof T]: T[K] } & {};
/** The config object a set of rows yields: one property per row, optional where the row is. */
export type ConfigOf<R extends SettingRow> = Flatten<
  { [S in R as S extends { optional: true } ? never : S['key']]: ValueOf<S> } & { [S in R as S extends { optional: true } ? S['key'] : never]?: ValueOf<S> }
>;

/** Every limit and knob of the server. */
export type ServerConfig = ConfigOf<SettingRow>;
/** The settings of one group (the HTTP API plugin takes only its own). */
export type GroupConfig<G extends Group> = ConfigOf<Extract<SettingRow, { group: G }>>;

/** Rules between settings, checked after each setting's own; `problem` names the flags involved. */
export const CROSS_RULES: { rule: string; problem: (c: ServerConfig) => string | undefined }[] = [
  {
    rule: '`--min-chunk-ms` ≤ `--chunk-ms` ≤ `--max-chunk-ms`',
    problem: (c) => (c.minChunkMs <= c.defaultChunkMs && c.defaultChunkMs <= c.maxChunkMs
      ? undefined
      : `--min-chunk-ms (${c.minChunkMs}) ≤ --chunk-ms (${c.defaultChunkMs}) ≤ --max-chunk-ms (${c.maxChunkMs}) does not hold`),
  },
  {
    rule: 'at least one `--api-key` (or `--api-keys-file`) or `--room-key`, unless `--no-auth`',
    problem: (c) => (c.noAuth || c.apiKeys.length > 0 || c.roomKeys.length > 0
      ? undefined
      : 'no API keys configured: pass --api-key / TOKSTREAM_API_KEYS / --api-keys-file (or --room-key), or --no-auth for local use'),
  },
];
