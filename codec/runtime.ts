import { createRequire } from 'node:module';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { CodecError } from './pure/errors.js';

// required rather than imported: Node's ESM loader would first scan this CommonJS package for its
// export names, ~30 ms of every prep encoder thread's start-up
export const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');
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
}

export interface LoadedSession {
  session: InferenceSession;
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

/** Creates a session, never silently on another provider than the caller asked for. */
export async function createSession(path: string, opts: RuntimeOptions = {}): Promise<LoadedSession> {
  const want = opts.provider ?? 'cpu';
  const log = opts.log ?? ((m: string) => console.error(m));
  if (want !== 'cpu') {
    try {
      const session = await ort.InferenceSession.create(path, sessionOptions('cuda', opts));
      return { session, provider: 'cuda' };
    } catch (e) {
      const reason = `CUDA execution provider unavailable: ${(e as Error).message.split('\n')[0]}`;
      if (want === 'cuda') throw new CodecError('model_broken', `${path}: ${reason}`);
      log(`WARNING: ${reason}; running ${path} on CPU`);
      const session = await ort.InferenceSession.create(path, sessionOptions('cpu', opts));
      return { session, provider: 'cpu', fallbackReason: reason };
    }
  }
  const session = await ort.InferenceSession.create(path, sessionOptions('cpu', opts));
  return { session, provider: 'cpu' };
}
