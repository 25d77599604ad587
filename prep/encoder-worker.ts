/**
 * Worker thread owning one ONNX encoder session. onnxruntime-node's run blocks
 * the thread it is called on, so sessions live here and the main thread stays
 * free to read ffmpeg output, segment and write shards while the model runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CodecModel } from '../codec/model.js';
import type { ProviderChoice } from '../codec/runtime.js';

export interface EncoderWorkerData {
  modelDir: string;
  threads: number;
  provider: ProviderChoice;
}

/** A batch of `n` equal-length windows laid end to end in `audio`. */
export interface EncodeRequest {
  id: number;
  n: number;
  audio: Float32Array;
}

export type EncodeReply =
  | { id: number; codes: Int32Array; numCodebooks: number; numFrames: number }
  | { id: number; error: { code?: string; message: string } };

export type WorkerHello =
  | { ready: true; provider: 'cpu' | 'cuda'; fallbackReason?: string }
  | { ready: false; error: { code?: string; message: string } };

const port = parentPort!;
const { modelDir, threads, provider } = workerData as EncoderWorkerData;
const errorOf = (e: unknown) => ({ code: (e as { code?: string }).code, message: (e as Error).message ?? String(e) });

try {
  const model = await CodecModel.load(modelDir, { intraOpThreads: threads, interOpThreads: 1, provider, log: () => {} }, 'encoder');
  port.on('message', async (req: EncodeRequest) => {
    try {
      const len = req.audio.length / req.n;
      const windows = Array.from({ length: req.n }, (_, i) => req.audio.subarray(i * len, (i + 1) * len));
      const blocks = await model.encodeBatch(windows);
      const { numCodebooks, numFrames } = blocks[0];
      const codes = new Int32Array(req.n * numCodebooks * numFrames);
      blocks.forEach((b, i) => codes.set(b.codes, i * b.codes.length));
      port.postMessage({ id: req.id, codes, numCodebooks, numFrames } satisfies EncodeReply, [codes.buffer]);
    } catch (e) {
      port.postMessage({ id: req.id, error: errorOf(e) } satisfies EncodeReply);
    }
  });
  port.postMessage({ ready: true, provider: model.provider, fallbackReason: model.fallbackReason } satisfies WorkerHello);
} catch (e) {
  port.postMessage({ ready: false, error: errorOf(e) } satisfies WorkerHello);
}
