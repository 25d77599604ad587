/** Worker thread running StreamResamplers for ThreadResampler (resample-thread.ts). */
import { parentPort } from 'node:worker_threads';
import { StreamResampler } from './resample.js';
import type { ResampleReply, ResampleRequest } from './resample-thread.js';
import { toWireError, transferables } from './worker-calls.js';

const port = parentPort!;
const streams = new Map<number, StreamResampler>();

port.on('message', async (req: ResampleRequest & { id: number }) => {
  try {
    let pcm: Float32Array | undefined;
    if (req.op === 'open') streams.set(req.stream, await StreamResampler.create(req.inRate, req.outRate));
    else if (req.op === 'push') pcm = streams.get(req.stream)!.push(req.pcm);
    else if (req.op === 'finish') {
      pcm = streams.get(req.stream)!.finish();
      streams.delete(req.stream);
    } else {
      streams.get(req.stream)?.destroy();
      streams.delete(req.stream);
    }
    // an output that views WASM memory or a larger buffer is copied, never transferred
    port.postMessage({ id: req.id, pcm } satisfies ResampleReply, pcm ? transferables([pcm]) : []);
  } catch (e) {
    port.postMessage({ id: req.id, error: toWireError(e) });
  }
});
