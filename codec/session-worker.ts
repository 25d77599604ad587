/**
 * Worker thread holding ONNX sessions for a SessionHost (session-host.ts). onnxruntime-node's run
 * blocks the thread that calls it, so the sessions live here and the caller's event loop stays free.
 * Tensor buffers travel both ways by transfer, not copy.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createSession, type GraphSession, type RuntimeOptions, type TensorData } from './runtime.js';
import { toWireError, transferables } from './worker-calls.js';

export type SessionRequest =
  | { op: 'load'; graph: number; path: string }
  | { op: 'run'; graph: number; feeds: Record<string, TensorData> }
  | { op: 'release'; graph: number };

export interface SessionReply {
  id: number;
  loaded?: { inputNames: string[]; outputNames: string[]; provider: 'cpu' | 'cuda'; fallbackReason?: string; notices: string[] };
  outputs?: Record<string, TensorData>;
}

const port = parentPort!;
const runtime = workerData as Omit<RuntimeOptions, 'log'>;
const sessions = new Map<number, GraphSession>();

port.on('message', async (req: SessionRequest & { id: number }) => {
  try {
    if (req.op === 'load') {
      const notices: string[] = [];
      const { session, provider, fallbackReason } = await createSession(req.path, { ...runtime, log: (m) => notices.push(m) });
      sessions.set(req.graph, session);
      const loaded = { inputNames: [...session.inputNames], outputNames: [...session.outputNames], provider, fallbackReason, notices };
      port.postMessage({ id: req.id, loaded } satisfies SessionReply);
    } else if (req.op === 'run') {
      const outputs = await sessions.get(req.graph)!.run(req.feeds);
      // plain objects: an ort.Tensor does not survive structured cloning as one
      const plain = Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { type: t.type, data: t.data, dims: [...t.dims] }]));
      port.postMessage({ id: req.id, outputs: plain } satisfies SessionReply, transferables(Object.values(plain).map((t) => t.data)));
    } else {
      await sessions.get(req.graph)?.release();
      sessions.delete(req.graph);
      port.postMessage({ id: req.id } satisfies SessionReply);
    }
  } catch (e) {
    port.postMessage({ id: req.id, error: toWireError(e) });
  }
});
