import { Worker } from 'node:worker_threads';
import { CodecError, type CodecErrorCode } from './errors.js';
import { transferables, type GraphSession, type LoadedSession, type RuntimeOptions, type TensorData } from './runtime.js';
import type { HostReply, HostRequest, WireError } from './session-worker.js';

type Request = HostRequest extends infer R ? (R extends HostRequest ? Omit<R, 'id'> : never) : never;

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (r: HostReply) => void; reject: (e: Error) => void }>;
}

/**
 * Worker threads that hold one model's ONNX sessions (session-worker.ts). Every thread loads every
 * graph; a run goes to the thread with the fewest runs in flight. Feeds and outputs are transferred,
 * so a feed's buffer is detached once `run` is called. Idle threads do not keep the process alive.
 */
export class SessionHost {
  private readonly threads: Thread[];
  private nextId = 0;
  private nextGraph = 0;
  private broken: Error | undefined;

  constructor(private readonly opts: RuntimeOptions = {}) {
    const { log: _log, ...runtime } = opts;
    this.threads = Array.from({ length: Math.max(1, opts.workers ?? 1) }, () => this.spawn(runtime));
  }

  private spawn(runtime: Omit<RuntimeOptions, 'log'>): Thread {
    const worker = new Worker(workerFile(), { workerData: runtime });
    const thread: Thread = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (r: HostReply) => {
      const p = thread.pending.get(r.id);
      if (!p) return;
      thread.pending.delete(r.id);
      if (thread.pending.size === 0) worker.unref();
      p.resolve(r);
    });
    // plain Errors, not CodecErrors: no input is to blame (prep retries the job instead of failing an item)
    worker.on('error', (e) => this.fail(new Error(`ONNX session thread died: ${e.message}`)));
    worker.on('exit', (code) => this.fail(new Error(`ONNX session thread exited with code ${code}`)));
    return thread;
  }

  private call(thread: Thread, req: Request, transfer: ArrayBuffer[] = []): Promise<HostReply> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise<HostReply>((resolve, reject) => {
      if (thread.pending.size === 0) thread.worker.ref(); // a caller awaits: keep the process up until the reply
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage({ ...req, id } as HostRequest, transfer);
    }).then((r) => {
      if ('error' in r) throw wireError(r.error);
      return r;
    });
  }

  /** Opens the graph at `path` on every thread. */
  async load(path: string): Promise<LoadedSession> {
    const graph = this.nextGraph++;
    const replies = await Promise.all(this.threads.map((t) => this.call(t, { op: 'load', graph, path })));
    const { loaded } = replies[0] as Extract<HostReply, { loaded: unknown }>;
    const log = this.opts.log ?? ((m: string) => console.error(m));
    loaded.notices.forEach((m) => log(m));
    const session: GraphSession = {
      inputNames: loaded.inputNames,
      outputNames: loaded.outputNames,
      run: async (feeds: Record<string, TensorData>) => {
        const thread = this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
        const r = await this.call(thread, { op: 'run', graph, feeds }, transferables(feeds));
        return (r as Extract<HostReply, { outputs: unknown }>).outputs;
      },
      release: async () => {
        await Promise.all(this.threads.map((t) => this.call(t, { op: 'release', graph }).catch(() => undefined)));
      },
    };
    return { session, provider: loaded.provider, fallbackReason: loaded.fallbackReason };
  }

  private fail(e: Error): void {
    this.broken ??= e;
    for (const t of this.threads) {
      for (const p of t.pending.values()) p.reject(this.broken);
      t.pending.clear();
    }
  }

  /** Ends the threads; runs still in flight are rejected. */
  async close(): Promise<void> {
    this.fail(new Error('model released'));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}

/**
 * The worker's compiled file: beside this one, or under dist/ when this module runs from its
 * TypeScript source (vitest), since a worker thread of Node 20 cannot load TypeScript.
 */
function workerFile(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/codec/session-worker.js', here) : new URL('./session-worker.js', here);
}

/** An error from a thread: a CodecError where it carried a code, else a plain Error as onnxruntime throws. */
function wireError(e: WireError): Error {
  return e.code ? new CodecError(e.code as CodecErrorCode, e.message) : new Error(e.message);
}
