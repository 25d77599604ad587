import { CodecError, isCodecError } from '../codec/pure/errors.js';
import { StreamEncoder, concatTokens, type EncodeWindow } from '../codec/stream-encoder.js';
import type { TokenBlock } from '../codec/pure/types.js';
import type { EncoderPool } from './encoder-pool.js';
import type { PrepFailure, PrepItem } from './inputs.js';
import { tokensToNpy } from './npy.js';
import type { PrepSettings } from './plan.js';
import { VadSegmenter } from './vad.js';

/** One line of index.jsonl. */
export interface IndexEntry {
  key: string;
  shard: string;
  id: string;
  source: string;
  segment: number | null;
  start: number;
  end: number;
  duration: number;
  frames: number;
  codebooks: number;
  tokens: number;
}

export interface EntryOut {
  key: string;
  npy: Buffer;
  json: Buffer;
  index: Omit<IndexEntry, 'shard'>;
}

/** Integer counters, summed per job and per run (integers keep sums order-independent). */
export interface Totals {
  items: number;
  failed: number;
  entries: number;
  samplesIn: number;
  samplesOut: number;
  frames: number;
  tokens: number;
  vadDropped: number;
  vadDroppedSamples: number;
  itemsWithoutSpeech: number;
}

export const zeroTotals = (): Totals => ({ items: 0, failed: 0, entries: 0, samplesIn: 0, samplesOut: 0, frames: 0, tokens: 0, vadDropped: 0, vadDroppedSamples: 0, itemsWithoutSpeech: 0 });

export function addTotals(a: Totals, b: Totals): Totals {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof Totals)[]) out[k] += b[k];
  return out;
}

export interface ItemOutcome {
  entries: EntryOut[];
  failure?: PrepFailure;
  totals: Totals;
}

export interface EncodeContext {
  settings: PrepSettings;
  pool: EncoderPool;
  /** windows of one signal in flight at once (bounds memory on long files) */
  windowsAhead?: number;
}

export interface ItemContext extends EncodeContext {
  /** the item's mono PCM at the model rate (DecodeAhead.open) */
  openPcm: () => Promise<AsyncIterable<Float32Array>>;
}

/** With batches of several windows, final windows of causal models are zero-padded up to a multiple of this many frames so short items batch together. */
const BUCKET_FRAMES = 25;

/** Decodes, optionally segments, and encodes one item. Never throws for a bad input: that becomes a failure. */
export async function processItem(item: PrepItem, ctx: ItemContext): Promise<ItemOutcome> {
  const totals = zeroTotals();
  totals.items = 1;
  try {
    const entries = await encodeItem(item, ctx, totals);
    totals.entries = entries.length;
    for (const e of entries) {
      totals.frames += e.index.frames;
      totals.tokens += e.index.tokens;
    }
    return { entries, totals };
  } catch (e) {
    if (!isCodecError(e)) throw e; // a bug or a dead encoder: the job fails and is retried
    return {
      entries: [],
      failure: { id: item.id, source: item.source, code: e.code, reason: e.message },
      totals: { ...zeroTotals(), items: 1, failed: 1 },
    };
  }
}

async function encodeItem(item: PrepItem, ctx: ItemContext, totals: Totals): Promise<EntryOut[]> {
  const { settings } = ctx;
  const rate = settings.model.sampleRate;
  const first = item.start === undefined ? 0 : Math.round(item.start * rate);
  const last = item.end === undefined ? Infinity : Math.round(item.end * rate);
  const maxSamples = settings.maxItemSec * rate;
  const pcm = await ctx.openPcm();
  const vad = settings.vad ? new VadSegmenter(rate, settings.model.hopLength, settings.vad) : null;
  const whole = vad ? null : new TokenStream(ctx);
  const segments: Promise<EntryOut>[] = [];
  const addSegments = (segs: { start: number; pcm: Float32Array }[]) => {
    for (const s of segs) {
      const n = segments.length;
      totals.samplesOut += s.pcm.length;
      const p = encodeWhole(s.pcm, ctx).then((tokens) => entry(item, ctx, tokens, first + s.start, s.pcm.length, n));
      p.catch(() => {}); // awaited below; this only stops an early rejection from counting as unhandled
      segments.push(p);
    }
  };
  let pos = 0;
  let waited = 0;
  for await (const chunk of pcm) {
    const from = Math.max(0, first - pos);
    const to = Math.min(chunk.length, last - pos);
    pos += chunk.length;
    if (to > from) {
      const part = from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to);
      totals.samplesIn += part.length;
      if (totals.samplesIn > maxSamples) throw new CodecError('limit_exceeded', `longer than the ${settings.maxItemSec} s item limit (--max-item-sec)`);
      if (vad) {
        addSegments(vad.push(part));
        // bound the segments (and their audio) waiting for the encoder on long recordings
        while (segments.length - waited > (ctx.windowsAhead ?? 4)) await segments[waited++];
      } else await whole!.push(part);
    }
    if (pos >= last) break; // stops the decoder child early
  }
  if (totals.samplesIn === 0) throw new CodecError('invalid_argument', `start offset ${item.start} s is at or past the end of the audio (${(pos / rate).toFixed(3)} s)`);
  if (vad) {
    addSegments(vad.finish());
    totals.vadDropped = vad.dropped;
    totals.vadDroppedSamples = vad.droppedSamples;
    const entries = await Promise.all(segments);
    if (!entries.length) totals.itemsWithoutSpeech = 1;
    return entries;
  }
  const tokens = await whole!.finish();
  totals.samplesOut = totals.samplesIn;
  return [entry(item, ctx, tokens, first, totals.samplesIn, null)];
}

/** Streams one signal through the pool, keeping a bounded number of windows in flight. */
class TokenStream {
  private readonly enc: StreamEncoder;
  private readonly pending: Promise<TokenBlock>[] = [];
  private readonly done: TokenBlock[] = [];

  constructor(private readonly ctx: EncodeContext) {
    this.enc = new StreamEncoder(ctx.pool.manifest, { chunkFrames: ctx.settings.chunkFrames, tightFinal: true });
  }

  async push(pcm: Float32Array): Promise<void> {
    for (const w of this.enc.push(pcm)) this.submit(w);
    while (this.pending.length > (this.ctx.windowsAhead ?? 4)) this.done.push(await this.pending.shift()!);
  }

  async finish(): Promise<TokenBlock> {
    for (const w of this.enc.finish()) this.submit(w);
    this.done.push(...(await Promise.all(this.pending.splice(0))));
    return concatTokens(this.done, this.ctx.settings.codebooks);
  }

  private submit(w: EncodeWindow): void {
    const { settings, pool } = this.ctx;
    let audio = w.audio;
    // zeros after a causal window cannot change its frames, and equal lengths batch together
    // (with batches of one, as on CPU, padding would only cost time)
    if (settings.model.causal && pool.batch > 1 && audio.length < this.enc.windowSamples) {
      const bucket = BUCKET_FRAMES * settings.model.hopLength;
      const target = Math.min(this.enc.windowSamples, Math.ceil(audio.length / bucket) * bucket);
      if (target > audio.length) {
        audio = new Float32Array(target);
        audio.set(w.audio);
      }
    }
    const p = pool.encode(audio, w.keepFrom, w.keepCount, settings.codebooks);
    p.catch(() => {}); // awaited in order later
    this.pending.push(p);
  }
}

/** Encodes one in-memory signal exactly as the pipeline does (same windows, padding and batching). */
export async function encodeWhole(pcm: Float32Array, ctx: EncodeContext): Promise<TokenBlock> {
  const s = new TokenStream(ctx);
  await s.push(pcm);
  return s.finish();
}

function entry(item: PrepItem, ctx: EncodeContext, tokens: TokenBlock, startSample: number, samples: number, segment: number | null): EntryOut {
  const { settings } = ctx;
  const rate = settings.model.sampleRate;
  const key = segment === null ? item.key : `${item.key}-${String(segment).padStart(4, '0')}`;
  const start = startSample / rate;
  const end = (startSample + samples) / rate;
  // the index line and the per-item JSON share their leading fields, in this order
  const common = { key, id: item.id, source: item.source, segment, start, end, duration: samples / rate };
  const index = { ...common, frames: tokens.numFrames, codebooks: tokens.numCodebooks, tokens: tokens.numFrames * tokens.numCodebooks };
  const json = {
    ...common,
    sample_rate: rate,
    frame_rate: rate / settings.model.hopLength,
    frames: tokens.numFrames,
    codebooks: tokens.numCodebooks,
    codebook_size: settings.model.codebookSize,
    model: { name: settings.model.name, version: settings.model.version, sha256: settings.model.sha256 },
    meta: item.meta ?? {},
  };
  return { key, npy: tokensToNpy(tokens), json: Buffer.from(JSON.stringify(json)), index };
}
