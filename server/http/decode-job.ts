import type { ModelBatcher } from '../../codec/batcher.js';
import type { ModelManifest } from '../../codec/manifest.js';
import { StreamDecoder, type DecodeWindow } from '../../codec/pure/stream-decoder.js';
import { sliceTokens } from '../../codec/stream-encoder.js';
import { TokFormatError, readTokStream, verifyTok, type TokHeader, type TokStreamEvent, type TokVerifyOptions } from '../../codec/tokfile.js';
import { Ordered } from './ordered.js';

/** A verified .tok upload, held in memory, read again as events for decoding. */
export interface OpenedTok {
  header: TokHeader;
  events: AsyncGenerator<TokStreamEvent, void, undefined>;
}

/**
 * Reads the whole upload and verifies every byte of it (chunks, index, footer) before anything is
 * decoded, so a damaged file gets an error status instead of a 200 and a cut transfer. Token files
 * are small (about 45 KB per minute at 6 kbit/s); `checks` may refuse a header or a length early.
 */
export async function receiveTok(bytes: AsyncIterable<Uint8Array>, checks: Pick<TokVerifyOptions, 'onHeader' | 'onChunk'>): Promise<OpenedTok> {
  const kept: Uint8Array[] = [];
  async function* keep(): AsyncGenerator<Uint8Array> {
    for await (const piece of bytes) {
      kept.push(piece);
      yield piece;
    }
  }
  const { header } = await verifyTok(keep(), checks);
  return { header, events: readTokStream(kept) };
}

export interface DecodeJob {
  manifest: ModelManifest;
  batcher: ModelBatcher;
  tok: OpenedTok;
  /** Decode with the first N codebooks of the file (bandwidth selection). */
  codebooks: number;
  chunkFrames: number;
  jobId: string;
  signal: AbortSignal;
  maxInFlight?: number;
}

/**
 * .tok tokens to model-rate PCM, streamed, trimmed to the original length the
 * file records (decoding yields whole frames; the last one is padding past the end).
 */
export async function* decodeTokToPcm(job: DecodeJob): AsyncGenerator<Float32Array> {
  const { manifest: m, batcher, codebooks, signal } = job;
  const hop = m.hopLength;
  const maxInFlight = job.maxInFlight ?? 2;
  const decoder = new StreamDecoder(m, { chunkFrames: job.chunkFrames, numCodebooks: codebooks });
  const pending = new Ordered<Float32Array>();
  const submit = (w: DecodeWindow) => pending.add(batcher.submitDecode(w, { priority: 'bulk', streamId: job.jobId, signal }));
  // The tail is held back until the end says how much of it is real: padding is under one hop,
  // plus a few samples where the source rate's length was rounded; two hops cover both.
  let held = new Float32Array(0);
  const release = (pcm: Float32Array): Float32Array => {
    const all = concat(held, pcm);
    const cut = Math.max(0, all.length - 2 * hop);
    held = all.slice(cut);
    return all.subarray(0, cut);
  };
  let emitted = 0;
  let originalLength: number | null = null;
  try {
    for await (const ev of job.tok.events) {
      if (ev.type === 'tokens') {
        const t = ev.tokens;
        for (const w of decoder.push(codebooks === t.numCodebooks ? t : sliceTokens(t, 0, t.numFrames, codebooks))) submit(w);
      } else if (ev.type === 'end') {
        if (!ev.complete) throw ev.problem ?? new TokFormatError('truncated', '.tok stream ended without its index');
        // recorded at the source rate; the output is at the model rate
        const h = job.tok.header;
        originalLength = ev.originalLength === null ? null : Math.round((ev.originalLength * m.sampleRate) / h.originalSampleRate);
      }
      while (pending.size > maxInFlight) {
        const pcm = release((await pending.next())!);
        emitted += pcm.length;
        if (pcm.length) yield pcm;
      }
    }
    for (const w of decoder.finish()) submit(w);
    for (let p = await pending.next(); p; p = await pending.next()) {
      const pcm = release(p);
      emitted += pcm.length;
      if (pcm.length) yield pcm;
    }
    const keep = originalLength === null ? held.length : Math.max(0, Math.min(held.length, originalLength - emitted));
    if (keep) yield held.subarray(0, keep);
  } finally {
    batcher.dropStream(job.jobId);
    await job.tok.events.return();
  }
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  if (a.length === 0) return b;
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
