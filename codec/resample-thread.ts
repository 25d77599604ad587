import { checkSampleRate } from './resample.js';
import { transferables, WorkerCalls } from './worker-calls.js';

export type ResampleRequest =
  | { op: 'open'; stream: number; inRate: number; outRate: number }
  | { op: 'push'; stream: number; pcm: Float32Array }
  | { op: 'finish' | 'destroy'; stream: number };

export interface ResampleReply {
  id: number;
  pcm?: Float32Array;
}

/** One thread for the whole process, started on first use; replaced if it ever dies. */
let shared: WorkerCalls | undefined;
let nextStream = 0;

/**
 * A StreamResampler on a worker thread shared by the process: the same samples, but a large
 * upload's resampling (libsamplerate WASM, ~7 ms per second of 44.1 kHz audio) no longer holds the
 * event loop. Chunks pushed to it are transferred (detached) when they own their buffer.
 */
export class ThreadResampler {
  private constructor(private readonly thread: WorkerCalls, private readonly stream: number) {}

  static async create(inRate: number, outRate: number): Promise<ThreadResampler> {
    checkSampleRate(inRate);
    checkSampleRate(outRate);
    if (!shared?.alive) shared = new WorkerCalls('resample-worker', undefined);
    const r = new ThreadResampler(shared, nextStream++);
    await r.call({ op: 'open', stream: r.stream, inRate, outRate });
    return r;
  }

  private async call(req: ResampleRequest, transfer?: ArrayBuffer[]): Promise<Float32Array> {
    return (await this.thread.call<ResampleReply>(req, transfer)).pcm ?? new Float32Array(0);
  }

  push(pcm: Float32Array): Promise<Float32Array> {
    return this.call({ op: 'push', stream: this.stream, pcm }, transferables([pcm]));
  }

  /** Flushes the filter tail (see StreamResampler.finish) and frees the stream. */
  finish(): Promise<Float32Array> {
    return this.call({ op: 'finish', stream: this.stream });
  }

  /** Frees the stream without flushing (abandoned); a no-op after finish. */
  destroy(): void {
    this.call({ op: 'destroy', stream: this.stream }).catch(() => {});
  }
}
