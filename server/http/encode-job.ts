import type { ModelBatcher } from '../../codec/batcher.js';
import { modelHash, type ModelManifest } from '../../codec/manifest.js';
import { StreamEncoder, type EncodeWindow } from '../../codec/stream-encoder.js';
import { TokWriter } from '../../codec/tokfile.js';
import type { TokenBlock } from '../../codec/pure/types.js';
import { Ordered } from './ordered.js';

export interface EncodeJob {
  manifest: ModelManifest;
  batcher: ModelBatcher;
  /** Mono float PCM at the model rate. */
  pcm: AsyncIterable<Float32Array>;
  /** Rate of the source before resampling, and how many samples of it were read (for the .tok original length). */
  originalSampleRate: number;
  sourceSamples: () => number;
  codebooks: number;
  /** Frames per window sent to the batcher. */
  chunkFrames: number;
  /** Fairness and cancellation unit in the batcher. */
  jobId: string;
  signal: AbortSignal;
  /** Windows of this job queued or running at once. */
  maxInFlight?: number;
  metadata?: Record<string, unknown>;
}

/**
 * Audio to .tok bytes, streamed: windows go to the shared batcher at bulk
 * priority, tokens come back in order and leave as .tok chunks. Memory: a couple
 * of windows of audio and one .tok chunk, whatever the length of the input.
 */
export async function* encodeToTok(job: EncodeJob): AsyncGenerator<Uint8Array> {
  const { manifest: m, batcher, codebooks, signal } = job;
  const maxInFlight = job.maxInFlight ?? 2;
  const out: Uint8Array[] = [];
  const writer = new TokWriter(
    {
      modelName: m.name,
      modelSha256: modelHash(m),
      sampleRate: m.sampleRate,
      hopLength: m.hopLength,
      numCodebooks: codebooks,
      codebookSize: m.codebookSize,
      originalSampleRate: job.originalSampleRate,
      metadata: job.metadata,
    },
    (bytes) => {
      out.push(bytes);
    },
  );
  const encoder = new StreamEncoder(m, { chunkFrames: job.chunkFrames });
  const pending = new Ordered<TokenBlock>();
  const submit = (w: EncodeWindow) => pending.add(batcher.submitEncode(w, { priority: 'bulk', streamId: job.jobId, signal, codebooks }));
  try {
    for await (const chunk of job.pcm) {
      for (const w of encoder.push(chunk)) submit(w);
      while (pending.size > maxInFlight) {
        await writer.write((await pending.next())!);
        yield* out.splice(0);
      }
    }
    for (const w of encoder.finish()) submit(w);
    for (let b = await pending.next(); b; b = await pending.next()) {
      await writer.write(b);
      yield* out.splice(0);
    }
    await writer.finish({ originalLength: job.sourceSamples() });
    yield* out.splice(0);
  } finally {
    batcher.dropStream(job.jobId);
  }
}
