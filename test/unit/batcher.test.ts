/**
 * The batcher's scheduling with a fake model behind its BatchModel interface: what runs together,
 * in which order, what is admitted. test/integration/stream-batcher.test.ts checks, on the real
 * model, that a stacked run gives each window the tokens it would get alone.
 */
import { describe, expect, it } from 'vitest';
import { ModelBatcher, type BatchInfo, type BatchModel, type BatcherOptions } from '../../codec/batcher.js';
import type { ModelManifest } from '../../codec/manifest.js';
import type { EncodeWindow } from '../../codec/stream-encoder.js';
import type { StreamCarry, TokenBlock } from '../../codec/pure/types.js';

const HOP = 4;
const CODEBOOKS = 2;

/**
 * Encodes frame t of a window to code `audio[t * HOP] + 100 * k` in codebook k, so each result
 * says which window and frame it came from. Each run takes `runMs` and is recorded.
 */
class FakeModel implements BatchModel {
  readonly manifest = { name: 'fake', hopLength: HOP, sampleRate: 1000, numCodebooks: CODEBOOKS, codebookSize: 1024 } as ModelManifest;
  readonly runs: number[][] = [];
  fail: Error | undefined;

  constructor(private readonly runMs = 0) {}

  async encodeBatch(audio: Float32Array[]): Promise<TokenBlock[]> {
    await this.run(audio);
    return audio.map((a) => this.tokens(a, 0));
  }

  async encodeStepBatch(audio: Float32Array[], states: Float32Array[]): Promise<{ tokens: TokenBlock[]; states: Float32Array[] }> {
    await this.run(audio);
    // the state counts the chunks a stream has run: it shows up in the codes
    return { tokens: audio.map((a, i) => this.tokens(a, states[i][0])), states: states.map((s) => Float32Array.of(s[0] + 1)) };
  }

  async decodeBatch(blocks: TokenBlock[]): Promise<Float32Array[]> {
    await this.run(blocks.map((b) => Float32Array.from(b.codes)));
    return blocks.map((b) => Float32Array.from({ length: b.numFrames * HOP }, (_, i) => b.codes[Math.floor(i / HOP)]));
  }

  private async run(inputs: Float32Array[]): Promise<void> {
    this.runs.push(inputs.map((a) => a[0]));
    if (this.runMs > 0) await new Promise((r) => setTimeout(r, this.runMs));
    if (this.fail) throw this.fail;
  }

  private tokens(audio: Float32Array, offset: number): TokenBlock {
    const frames = audio.length / HOP;
    const codes = new Int32Array(CODEBOOKS * frames);
    for (let k = 0; k < CODEBOOKS; k++) for (let t = 0; t < frames; t++) codes[k * frames + t] = audio[t * HOP] + 100 * k + offset;
    return { numCodebooks: CODEBOOKS, numFrames: frames, codes };
  }
}

/** Window `id` of `frames` frames; frame t holds id + t; keeps frames 1..2. */
function win(id: number, frames = 4, carry?: StreamCarry): EncodeWindow {
  const audio = new Float32Array(frames * HOP);
  for (let t = 0; t < frames; t++) audio[t * HOP] = id + t;
  return { audio, firstFrame: 0, keepFrom: 1, keepCount: 2, carry };
}

function setup(opts: BatcherOptions = {}, runMs = 0) {
  const model = new FakeModel(runMs);
  const infos: BatchInfo[] = [];
  const batcher = new ModelBatcher(model, { ...opts, onBatch: (i) => infos.push(i) });
  return { model, batcher, infos };
}

describe('ModelBatcher with a fake model: batching', () => {
  it('stacks windows of many streams into one run and gives each caller its own kept frames', async () => {
    const { model, batcher, infos } = setup({ maxBatch: 8, maxWaitMs: 20 });
    const got = await Promise.all([10, 20, 30, 40, 50].map((id, i) => batcher.submitEncode(win(id), { streamId: `s${i}`, codebooks: i === 0 ? 1 : undefined })));
    expect(model.runs).toEqual([[10, 20, 30, 40, 50]]);
    expect(got[0]).toEqual({ numCodebooks: 1, numFrames: 2, codes: Int32Array.of(11, 12) });
    expect(got[3]).toEqual({ numCodebooks: 2, numFrames: 2, codes: Int32Array.of(41, 42, 141, 142) });
    expect(infos).toMatchObject([{ kind: 'encode', size: 5, realtime: 5, bulk: 0, audioSec: (5 * 2 * HOP) / 1000 }]);
    await batcher.close();
  });

  it('starts a batch as soon as it is full, and never mixes window shapes in one run', async () => {
    const { model, batcher } = setup({ maxBatch: 2, maxWaitMs: 10_000 });
    const done = Promise.all([win(1), win(2, 6), win(3), win(4, 6)].map((w, i) => batcher.submitEncode(w, { streamId: `s${i}` })));
    await done; // with a 10 s wait, only full batches can have run
    expect(model.runs).toEqual([[1, 3], [2, 4]]);
    await batcher.close();
  });

  it('is fair: a stream with one window is not queued behind a stream with many', async () => {
    const { model, batcher } = setup({ maxBatch: 2, maxWaitMs: 1 });
    const heavy = Array.from({ length: 12 }, (_, i) => batcher.submitEncode(win(i), { streamId: 'heavy' }));
    const light = batcher.submitEncode(win(500), { streamId: 'light' });
    await Promise.all([...heavy, light]);
    expect(model.runs.findIndex((r) => r.includes(500))).toBe(1); // the first run was already full of heavy's
    expect(model.runs.flat().filter((id) => id < 500)).toEqual([...Array(12).keys()]); // one stream's windows stay in order
    await batcher.close();
  });

  it('runs the chunks of a stateful stream one at a time, in order, each with the state the previous one left', async () => {
    const { model, batcher } = setup({ maxBatch: 8, maxWaitMs: 1 }, 2);
    const a: StreamCarry = { value: Float32Array.of(0) };
    const b: StreamCarry = { value: Float32Array.of(0) };
    const results = await Promise.all([
      ...[0, 1, 2].map((i) => batcher.submitEncode(win(10 + i, 4, a), { streamId: 'a' })),
      ...[0, 1, 2].map((i) => batcher.submitEncode(win(20 + i, 4, b), { streamId: 'b' })),
    ]);
    expect(model.runs).toEqual([[10, 20], [11, 21], [12, 22]]);
    // chunk i ran after i earlier chunks of its stream: frame 1 of window 10 + i is 11 + i, plus the state i
    expect(results.map((r) => r.codes[0])).toEqual([11, 13, 15, 21, 23, 25]);
    expect([a.value[0], b.value[0]]).toEqual([3, 3]);
    await batcher.close();
  });
});

describe('ModelBatcher with a fake model: priorities', () => {
  it('runs bulk work only in what realtime work leaves: with a zero bulk share every realtime window goes first', async () => {
    const { batcher, infos } = setup({ maxBatch: 4, maxWaitMs: 1, bulkShare: 0, shareWindowMs: 50 }, 1);
    const rt = Array.from({ length: 8 }, (_, i) => batcher.submitEncode(win(i), { streamId: `rt${i % 2}` }));
    const bulk = Array.from({ length: 8 }, (_, i) => batcher.submitEncode(win(100 + i), { streamId: 'job', priority: 'bulk' }));
    await Promise.all(rt);
    await Promise.all(bulk); // held back while realtime work is recent, then run: never starved for good
    expect(infos.findIndex((r) => r.bulk > 0)).toBeGreaterThan(infos.findLastIndex((r) => r.realtime > 0));
    expect(infos.reduce((s, r) => s + r.bulk, 0)).toBe(8);
    await batcher.close();
  });

  it('lets bulk work fill the slots a realtime batch leaves free (same shape only)', async () => {
    const { batcher, infos } = setup({ maxBatch: 8, maxWaitMs: 15, bulkShare: 1 });
    const rt = [1, 2].map((id) => batcher.submitEncode(win(id), { streamId: `rt${id}` }));
    const odd = batcher.submitEncode(win(99, 6), { streamId: 'other', priority: 'bulk' });
    const bulk = [3, 4, 5, 6, 7, 8].map((id) => batcher.submitEncode(win(id), { streamId: 'job', priority: 'bulk' }));
    await Promise.all([...rt, ...bulk, odd]);
    expect(infos.map((r) => [r.realtime, r.bulk])).toEqual([[2, 6], [0, 1]]);
    await batcher.close();
  });

  it('sizes bulk-only runs to the run budget while realtime work is around, and not otherwise', async () => {
    const busy = setup({ maxBatch: 8, maxWaitMs: 1, bulkShare: 1, bulkRunBudgetMs: 0.001 }, 1);
    await busy.batcher.submitEncode(win(0), { streamId: 'rt' }); // realtime seen, cost per frame known
    await Promise.all(Array.from({ length: 8 }, (_, i) => busy.batcher.submitEncode(win(i + 1), { streamId: 'job', priority: 'bulk' })));
    expect(busy.infos.slice(1).map((r) => r.size)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    await busy.batcher.close();

    const idle = setup({ maxBatch: 8, maxWaitMs: 1, bulkRunBudgetMs: 0.001 }, 1);
    await Promise.all(Array.from({ length: 8 }, (_, i) => idle.batcher.submitEncode(win(i + 1), { streamId: 'job', priority: 'bulk' })));
    expect(idle.infos.map((r) => r.size)).toEqual([8]);
    await idle.batcher.close();
  });

  it('counts bulk runs in the busy share but not in the realtime busy share', async () => {
    const { batcher } = setup({ maxBatch: 1, maxWaitMs: 0, shareWindowMs: 1000 }, 5);
    await Promise.all(Array.from({ length: 4 }, (_, i) => batcher.submitEncode(win(i), { streamId: `job${i}`, priority: 'bulk' })));
    const s = batcher.stats();
    expect(s.busyShare).toBeGreaterThan(0.015); // 4 runs of >= 5 ms in a 1 s window
    expect(s.realtimeBusyShare).toBe(0);
    expect(s).toMatchObject({ queuedRealtime: 0, queuedBulk: 0, inFlight: 0, realtimeWaitMs: 0 });
    await batcher.close();
  });
});

describe('ModelBatcher with a fake model: admission and cancellation', () => {
  it('refuses work beyond maxQueued with limit_exceeded, per class', async () => {
    const { batcher } = setup({ maxQueued: 3, maxWaitMs: 10_000, maxBatch: 16 });
    const queued = [1, 2, 3].map((id) => batcher.submitEncode(win(id), { streamId: 'x' }));
    await expect(batcher.submitEncode(win(4), { streamId: 'y' })).rejects.toMatchObject({ code: 'limit_exceeded' });
    const bulk = batcher.submitEncode(win(5), { streamId: 'z', priority: 'bulk' }); // the bulk queue has its own limit
    expect(batcher.stats()).toMatchObject({ queuedRealtime: 3, queuedBulk: 1, streams: 2 });
    await batcher.close();
    for (const s of await Promise.allSettled([...queued, bulk])) expect(s).toMatchObject({ status: 'rejected', reason: { code: 'aborted' } });
  });

  it('refuses work it cannot take, with a typed error', async () => {
    const { batcher } = setup();
    const aborted = AbortSignal.abort();
    await expect(batcher.submitEncode(win(1), { streamId: 's', signal: aborted })).rejects.toMatchObject({ code: 'aborted' });
    await expect(batcher.submitEncode(win(1), { streamId: 's', priority: 'urgent' as never })).rejects.toMatchObject({ code: 'invalid_argument' });
    expect(() => new ModelBatcher(new FakeModel(), { maxBatch: 0 })).toThrow(/maxBatch must be a positive integer/);
    await batcher.close();
    await expect(batcher.submitEncode(win(1), { streamId: 's' })).rejects.toMatchObject({ code: 'aborted', message: 'batcher closed' });
  });

  it('drops queued work of an aborted or dropped stream and leaves the others alone', async () => {
    const { model, batcher } = setup({ maxBatch: 8, maxWaitMs: 30 });
    const ac = new AbortController();
    const gone = [1, 2, 3].map((id) => batcher.submitEncode(win(id), { streamId: 'gone', signal: ac.signal }));
    const dropped = [4, 5].map((id) => batcher.submitEncode(win(id), { streamId: 'dropped' }));
    const stay = batcher.submitEncode(win(6), { streamId: 'stay' });
    ac.abort();
    expect(batcher.dropStream('dropped')).toBe(2);
    for (const s of await Promise.allSettled([...gone, ...dropped])) expect(s).toMatchObject({ status: 'rejected', reason: { code: 'aborted' } });
    expect((await stay).codes).toEqual(Int32Array.of(7, 8, 107, 108));
    expect(model.runs).toEqual([[6]]);
    expect(batcher.stats()).toMatchObject({ queuedRealtime: 0, queuedBulk: 0, streams: 0 });
    await batcher.close();
  });

  it('fails every window of a failed run with the model\'s error, and keeps serving', async () => {
    const { model, batcher, infos } = setup({ maxBatch: 2, maxWaitMs: 5 });
    model.fail = new Error('run failed');
    const failed = await Promise.allSettled([1, 2].map((id) => batcher.submitEncode(win(id), { streamId: `s${id}` })));
    expect(failed.map((s) => s.status === 'rejected' && (s.reason as Error).message)).toEqual(['run failed', 'run failed']);
    expect(infos[0].error).toBe('run failed');
    model.fail = undefined;
    expect((await batcher.submitEncode(win(3), { streamId: 's3' })).codes[0]).toBe(4);
    await batcher.close();
  });

  it('decodes too, keeping each window\'s samples', async () => {
    const { batcher } = setup({ maxWaitMs: 1 });
    const tokens = { numCodebooks: 1, numFrames: 3, codes: Int32Array.of(5, 6, 7) };
    const pcm = await batcher.submitDecode({ tokens, firstSample: 0, keepFrom: HOP, keepCount: HOP + 1 }, { streamId: 'd' });
    expect([...pcm]).toEqual([6, 6, 6, 6, 7]);
    await batcher.close();
  });
});
