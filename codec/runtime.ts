import { createRequire } from 'node:module';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { CodecError } from './pure/errors.js';

// required rather than imported, and only where sessions run: Node's ESM loader would first scan this
// CommonJS package for its export names (~30 ms), and a thread whose sessions run on worker threads
// needs no native runtime at all
let ortModule: typeof import('onnxruntime-node') | undefined;
const ort = () => (ortModule ??= createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node'));
export type { InferenceSession, Tensor };

export type ProviderChoice = 'cpu' | 'cuda' | 'auto';

export interface RuntimeOptions {
  /** 'cuda' fails when CUDA is absent; 'auto' tries CUDA and falls back to CPU, loudly. Default 'cpu'. */
  provider?: ProviderChoice;
  /** Threads inside one ONNX op (0 = onnxruntime's default: one per core). */
  intraOpThreads?: number;
  interOpThreads?: number;
  /** Let idle ONNX threads spin (lower latency on a dedicated machine; wasted CPU on a shared one). Default false. */
  spinning?: boolean;
  /** Receives human-readable notices (provider in use, fallbacks). Default: console.error. */
  log?: (msg: string) => void;
  /**
   * Where ONNX runs execute. onnxruntime-node's run blocks the thread that calls it, so by default a
   * model's sessions live on worker threads of their own ('worker') and the event loop stays free
   * for sockets, health checks and timers; 'caller' runs them on the calling thread.
   */
  runOn?: 'worker' | 'caller';
  /** Worker threads per model, each holding every session of the model (default 1; 'worker' only). */
  workers?: number;
}

/** A tensor as plain data: what crosses a thread boundary. */
export interface TensorData {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
}

/** An ONNX session on this thread or on a worker thread; feeds may be transferred (detached) by `run`. */
export interface GraphSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

export interface LoadedSession {
  session: GraphSession;
  provider: 'cpu' | 'cuda';
  /** Why the provider is not the one asked for; undefined when it is. */
  fallbackReason?: string;
}

function sessionOptions(provider: 'cpu' | 'cuda', opts: RuntimeOptions): InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? ['cuda'] : ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.intraOpThreads ?? 0,
    interOpNumThreads: opts.interOpThreads ?? 0,
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: opts.spinning ? '1' : '0' }, inter_op: { allow_spinning: opts.spinning ? '1' : '0' } } },
  };
}

/** Creates a session on this thread, never silently on another provider than the caller asked for. */
export async function createSession(path: string, opts: RuntimeOptions = {}): Promise<LoadedSession> {
  const want = opts.provider ?? 'cpu';
  const log = opts.log ?? ((m: string) => console.error(m));
  if (want !== 'cpu') {
    try {
      return { session: inThread(await ort().InferenceSession.create(path, sessionOptions('cuda', opts))), provider: 'cuda' };
    } catch (e) {
      const reason = `CUDA execution provider unavailable: ${(e as Error).message.split('\n')[0]}`;
      if (want === 'cuda') throw new CodecError('model_broken', `${path}: ${reason}`);
      log(`WARNING: ${reason}; running ${path} on CPU`);
      const session = await ort().InferenceSession.create(path, sessionOptions('cpu', opts));
      return { session: inThread(session), provider: 'cpu', fallbackReason: reason };
    }
  }
  return { session: inThread(await ort().InferenceSession.create(path, sessionOptions('cpu', opts))), provider: 'cpu' };
}

function inThread(session: InferenceSession): GraphSession {
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const tensors = Object.fromEntries(Object.entries(feeds).map(([name, f]) => [name, new (ort().Tensor)(f.type, f.data, f.dims)]));
      return (await session.run(tensors)) as Record<string, TensorData>;
    },
    release: () => session.release(),
  };
}
