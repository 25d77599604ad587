import type { GraphSession, LoadedSession, RuntimeOptions, TensorData } from './runtime.js';
import type { SessionReply, SessionRequest } from './session-worker.js';
import { transferables, WorkerCalls } from './worker-calls.js';

/**
 * Worker threads that hold one model's ONNX sessions (session-worker.ts). Every thread loads every
 * graph; a run goes to the thread with the fewest runs in flight. Feeds and outputs are transferred,
 * so a feed's buffer is detached once `run` is called. Idle threads do not keep the process alive.
 */
export class SessionHost {
  private readonly threads: WorkerCalls[];
  private nextGraph = 0;

  constructor(private readonly opts: RuntimeOptions = {}) {
    const { log: _log, ...runtime } = opts;
    this.threads = Array.from({ length: Math.max(1, opts.workers ?? 1) }, () => new WorkerCalls('session-worker', runtime));
  }

  /** Opens the graph at `path` on every thread. */
  async load(path: string): Promise<LoadedSession> {
    const graph = this.nextGraph++;
    const call = (t: WorkerCalls, req: SessionRequest, transfer?: ArrayBuffer[]) => t.call<SessionReply>(req, transfer);
    const replies = await Promise.all(this.threads.map((t) => call(t, { op: 'load', graph, path })));
    const { loaded } = replies[0];
    if (!loaded) throw new Error(`${path}: no load reply`);
    const log = this.opts.log ?? ((m: string) => console.error(m));
    loaded.notices.forEach((m) => log(m));
    const session: GraphSession = {
      inputNames: loaded.inputNames,
      outputNames: loaded.outputNames,
      run: async (feeds: Record<string, TensorData>) => {
        const thread = this.threads.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
        const { outputs } = await call(thread, { op: 'run', graph, feeds }, transferables(Object.values(feeds).map((f) => f.data)));
        return outputs!;
      },
      release: async () => {
        await Promise.all(this.threads.map((t) => call(t, { op: 'release', graph }).catch(() => undefined)));
      },
    };
    return { session, provider: loaded.provider, fallbackReason: loaded.fallbackReason };
  }

  /** Ends the threads (and the sessions with them); runs still in flight are rejected. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close('model released')));
  }
}
