/**
 * Worker thread holding ONNX sessions for a SessionHost (session-host.ts). onnxruntime-node's run
 * blocks the thread that calls it, so the sessions live here and the caller's event loop stays free.
 * Tensor buffers travel both ways by transfer, not copy.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CodecError } from './errors.js';
import { createSession, transferables, type GraphSession, type RuntimeOptions, type TensorData } from './runtime.js';

export type HostRequest =
  | { op: 'load'; id: number; graph: number; path: string }
  | { op: 'run'; id: number; graph: number; feeds: Record<string, TensorData> }
  | { op: 'release'; id: number; graph: number };

export interface WireError {
  /** a CodecError's code */
  code?: string;
  message: string;
}

export type HostReply =
  | { id: number; loaded: { inputNames: string[]; outputNames: string[]; provider: 'cpu' | 'cuda'; fallbackReason?: string; notices: string[] } }
  | { id: number; outputs: Record<string, TensorData> }
  | { id: number; released: true }
  | { id: number; error: WireError };

const port = parentPort!;
const runtime = workerData as Omit<RuntimeOptions, 'log'>;
const sessions = new Map<number, GraphSession>();
const errorOf = (e: unknown): WireError => ({ code: e instanceof CodecError ? e.code : undefined, message: (e as Error).message ?? String(e) });
port.on('message', async (req: HostRequest) => {
  try {
    if (req.op === 'load') {
      const notices: string[] = [];
      const { session, provider, fallbackReason } = await createSession(req.path, { ...runtime, log: (m) => notices.push(m) });
      sessions.set(req.graph, session);
      const loaded = { inputNames: [...session.inputNames], outputNames: [...session.outputNames], provider, fallbackReason, notices };
      port.postMessage({ id: req.id, loaded } satisfies HostReply);
    } else if (req.op === 'run') {
      const outputs = await sessions.get(req.graph)!.run(req.feeds);
      // plain objects: an ort.Tensor does not survive structured cloning as one
      const plain = Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { type: t.type, data: t.data, dims: [...t.dims] }]));
      port.postMessage({ id: req.id, outputs: plain } satisfies HostReply, transferables(plain));
    } else {
      await sessions.get(req.graph)?.release();
      sessions.delete(req.graph);
      port.postMessage({ id: req.id, released: true } satisfies HostReply);
    }
  } catch (e) {
    port.postMessage({ id: req.id, error: errorOf(e) } satisfies HostReply);
  }
});
