import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { CodecModel } from '../../codec/model.js';
import { resampleAll } from '../../codec/resample.js';
import { StreamEncoder, concatTokens } from '../../codec/stream-encoder.js';
import type { TokenBlock } from '../../codec/pure/types.js';
import { resolveServerConfig, type ServerConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/main.js';
import { DEFAULT_MODEL_DIR } from './fixtures.js';

/** A models folder holding only the default model (other models in models/ would slow start-up). */
export function defaultOnlyModelsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tokstream-models-'));
  symlinkSync(DEFAULT_MODEL_DIR, join(dir, 'default'));
  return dir;
}

/** Tests that push whole files faster than real time raise admissionMaxQueueMs; admission has its own test. */
export async function startTestServer(overrides: Partial<ServerConfig> = {}): Promise<RunningServer & { wsUrl: string }> {
  const config = resolveServerConfig({
    host: '127.0.0.1', port: 0, noAuth: true, logLevel: 'silent', modelsDir: defaultOnlyModelsDir(), intraOpThreads: 1, demo: false, ...overrides,
  });
  const server = await startServer(config);
  return { ...server, wsUrl: server.url.replace('http', 'ws') + '/v1/stream' };
}

export type Incoming = { text: Record<string, any> } | { binary: Buffer };

/** A raw WebSocket with a message queue, for tests that speak the protocol byte by byte. */
export class Probe {
  readonly ws: WebSocket;
  readonly received: Incoming[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private waiters: (() => void)[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string, opts: WebSocket.ClientOptions & { protocols?: string[] } = {}) {
    this.ws = new WebSocket(url, opts.protocols ?? [], opts);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) =>
      this.ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.wake();
        resolve(code);
      }),
    );
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data: Buffer, isBinary) => {
      this.received.push(isBinary ? { binary: data } : { text: JSON.parse(data.toString()) });
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  sendJson(m: object): void {
    this.ws.send(JSON.stringify(m));
  }

  /** Waits for (and removes from the queue) the first message matching `pred`. */
  async next(pred: (m: Incoming) => boolean, timeoutMs = 20_000): Promise<Incoming> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(pred);
      if (i >= 0) return this.received.splice(i, 1)[0];
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) while waiting; queue: ${JSON.stringify(this.texts())}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting; queue: ${JSON.stringify(this.texts())}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  nextText(type: string, timeoutMs?: number): Promise<Record<string, any>> {
    return this.next((m) => 'text' in m && m.text.type === type, timeoutMs).then((m) => (m as { text: Record<string, any> }).text);
  }

  texts(): Record<string, any>[] {
    return this.received.flatMap((m) => ('text' in m ? [m.text] : []));
  }

  binaries(): Buffer[] {
    return this.received.flatMap((m) => ('binary' in m ? [m.binary] : []));
  }
}

export function randomChunks(total: number, min: number, max: number, seed = 1): number[] {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const out: number[] = [];
  for (let done = 0; done < total; ) {
    const n = Math.min(total - done, min + Math.floor(rnd() * (max - min + 1)));
    out.push(n);
    done += n;
  }
  return out;
}

/** Share of equal codes between two equally shaped token arrays. */
export function agreement(a: Int32Array, b: Int32Array): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / Math.max(1, a.length);
}

/**
 * Offline encoding the way a stream runs it (the stateful streaming encoder in `chunkFrames` chunks
 * when the model has one, else eager-start windows): what a stream of the same audio must give bit
 * for bit, whatever its packet sizes and batching.
 */
export async function encodeWithStreamPlan(model: CodecModel, pcm: Float32Array, rate: number, chunkFrames: number, codebooks?: number): Promise<TokenBlock> {
  const audio = rate === model.manifest.sampleRate ? pcm : await resampleAll(pcm, rate, model.manifest.sampleRate);
  const enc = new StreamEncoder(model.manifest, { chunkFrames, eagerStart: true, stateful: true });
  return concatTokens(await model.encodeWindows([...enc.push(audio), ...enc.finish()], codebooks), codebooks ?? model.manifest.numCodebooks);
}
