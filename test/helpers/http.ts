import { readdirSync, readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { ModelBatcher } from '../../codec/batcher.js';
import { CodecModel } from '../../codec/model.js';
import type { HttpApiConfig } from '../../server/http/config.js';
import { httpApi, type HttpApiOptions } from '../../server/http/plugin.js';
import { DEFAULT_MODEL_DIR } from './fixtures.js';

export interface TestApi {
  app: FastifyInstance;
  /** http://127.0.0.1:port of the real listening socket */
  url: string;
  model: CodecModel;
  batcher: ModelBatcher;
  close: () => Promise<void>;
}

let shared: Promise<CodecModel> | undefined;

/** The default model, loaded once per test file (2 intra-op threads: the CI box has 2 cores). */
export function defaultModel(): Promise<CodecModel> {
  shared ??= CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 2, interOpThreads: 1, log: () => {} });
  return shared;
}

/** The HTTP API plugin on a bare fastify instance with a real model and batcher, listening on a real port. */
export async function startApi(config: Partial<HttpApiConfig> = {}, extra: Partial<HttpApiOptions> = {}, server: FastifyServerOptions = { logger: false }): Promise<TestApi> {
  const model = await defaultModel();
  const batcher = new ModelBatcher(model, { maxBatch: 8, maxWaitMs: 2 });
  const app = Fastify(server);
  await app.register(httpApi, {
    models: new Map([[model.name, model]]),
    broken: [],
    batcherFor: () => batcher,
    config,
    ...extra,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    url,
    model,
    batcher,
    close: async () => {
      await app.close();
      await batcher.close();
    },
  };
}

/** Live ffmpeg processes whose parent is this process (Linux /proc). */
export function ffmpegChildren(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (comm === 'ffmpeg' && Number(ppid) === process.pid && state !== 'Z') out.push(Number(entry));
  }
  return out;
}

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

/**
 * Bytes as a fetch body. Node's fetch takes any ArrayBufferView; the DOM typings the project
 * compiles against want one backed by an ArrayBuffer, which Buffer and Uint8Array are not typed as.
 */
export function fetchBody(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}
