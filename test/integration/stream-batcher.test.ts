import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelBatcher, type BatchInfo } from '../../codec/batcher.js';
import { CodecModel } from '../../codec/model.js';
import { StreamEncoder, type EncodeWindow } from '../../codec/stream-encoder.js';
import { DEFAULT_MODEL_DIR, readPcm, speechWav } from '../helpers/fixtures.js';

let model: CodecModel;
let windows: EncodeWindow[];

beforeAll(async () => {
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
  const enc = new StreamEncoder(model.manifest, { chunkFrames: 6 });
  // steady-state windows only (equal shapes)
  windows = enc.push(readPcm(speechWav('Windows of many streams share one run.'), 24000)).slice(2, 26);
});
afterAll(async () => {
  await model?.release();
});

function batcher(opts: ConstructorParameters<typeof ModelBatcher>[1] = {}) {
  const runs: BatchInfo[] = [];
  const b = new ModelBatcher(model, { ...opts, onBatch: (i) => runs.push(i) });
  return { b, runs };
}

describe('ModelBatcher', () => {
  it('stacks windows of many streams into few runs, with the results of separate runs', async () => {
    const { b, runs } = batcher({ maxBatch: 8, maxWaitMs: 20 });
    const got = await Promise.all(windows.slice(0, 8).map((w, i) => b.submitEncode(w, { streamId: `s${i}` })));
    expect(runs.map((r) => r.size)).toEqual([8]);
    const alone = await model.encodeWindows(windows.slice(0, 8));
    got.forEach((g, i) => expect(g.codes).toEqual(alone[i].codes));
    await b.close();
  });

  it('is fair: a stream with one window is not queued behind a stream with many', async () => {
    const { b } = batcher({ maxBatch: 2, maxWaitMs: 1 });
    const order: string[] = [];
    const heavy = windows.slice(0, 12).map((w, i) => b.submitEncode(w, { streamId: 'heavy' }).then(() => order.push(`h${i}`)));
    const light = b.submitEncode(windows[12], { streamId: 'light' }).then(() => order.push('light'));
    await Promise.all([...heavy, light]);
    // the first run (2 slots, only "heavy" queued) takes two of heavy's; the next one pairs light with heavy
    expect(order.indexOf('light')).toBeLessThanOrEqual(3);
    await b.close();
  });

  it('runs bulk work only in what realtime work leaves: with a zero bulk share every realtime window goes first', async () => {
    const { b, runs } = batcher({ maxBatch: 4, maxWaitMs: 1, bulkShare: 0, shareWindowMs: 200 });
    const rt = windows.slice(8, 16).map((w, i) => b.submitEncode(w, { streamId: `rt${i % 2}`, priority: 'realtime' }));
    const bulk = windows.slice(0, 8).map((w) => b.submitEncode(w, { streamId: 'job', priority: 'bulk' }));
    await Promise.all(rt);
    // bulk is held back while realtime work is recent, then runs: it is never starved for good
    await Promise.all(bulk);
    const lastRealtime = runs.findLastIndex((r) => r.realtime > 0);
    const firstBulk = runs.findIndex((r) => r.bulk > 0);
    expect(firstBulk).toBeGreaterThan(lastRealtime);
    expect(runs.filter((r) => r.bulk > 0).reduce((s, r) => s + r.bulk, 0)).toBe(8);
    await b.close();
  });

  it('lets bulk work fill the slots a realtime batch leaves free (same shape)', async () => {
    const { b, runs } = batcher({ maxBatch: 8, maxWaitMs: 15, bulkShare: 1 });
    const rt = windows.slice(0, 2).map((w, i) => b.submitEncode(w, { streamId: `rt${i}` }));
    const bulk = windows.slice(2, 8).map((w) => b.submitEncode(w, { streamId: 'job', priority: 'bulk' }));
    await Promise.all([...rt, ...bulk]);
    expect(runs.map((r) => [r.realtime, r.bulk])).toEqual([[2, 6]]);
    await b.close();
  });

  it('sizes bulk-only runs to the run budget while realtime work is around, and not otherwise', async () => {
    const { b, runs } = batcher({ maxBatch: 8, maxWaitMs: 1, bulkShare: 1, bulkRunBudgetMs: 0.001 });
    await b.submitEncode(windows[0], { streamId: 'rt' }); // realtime seen, cost per frame known
    await Promise.all(windows.slice(1, 9).map((w) => b.submitEncode(w, { streamId: 'job', priority: 'bulk' })));
    expect(runs.slice(1).map((r) => r.size)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    await b.close();

    const idle = batcher({ maxBatch: 8, maxWaitMs: 1, bulkRunBudgetMs: 0.001 });
    await Promise.all(windows.slice(1, 9).map((w) => idle.b.submitEncode(w, { streamId: 'job', priority: 'bulk' })));
    expect(idle.runs.map((r) => r.size)).toEqual([8]);
    await idle.b.close();
  });

  it('drops queued work of an aborted stream (disconnect) and leaves the others alone', async () => {
    const { b } = batcher({ maxBatch: 2, maxWaitMs: 50 });
    const ac = new AbortController();
    const gone = windows.slice(0, 6).map((w) => b.submitEncode(w, { streamId: 'gone', signal: ac.signal }));
    const stay = b.submitEncode(windows[6], { streamId: 'stay' });
    ac.abort();
    const settled = await Promise.allSettled(gone);
    expect(settled.filter((s) => s.status === 'rejected').length).toBeGreaterThanOrEqual(4);
    for (const s of settled) if (s.status === 'rejected') expect((s.reason as { code: string }).code).toBe('aborted');
    expect((await stay).numFrames).toBe(windows[6].keepCount);
    expect(b.stats()).toMatchObject({ queuedRealtime: 0, queuedBulk: 0, streams: 0 });
    await b.close();
  });

  it('refuses work beyond maxQueued with limit_exceeded', async () => {
    const { b } = batcher({ maxQueued: 3, maxWaitMs: 1000, maxBatch: 16 });
    const ok = windows.slice(0, 3).map((w) => b.submitEncode(w, { streamId: 'x' }));
    await expect(b.submitEncode(windows[3], { streamId: 'x' })).rejects.toMatchObject({ code: 'limit_exceeded' });
    await b.close();
    await Promise.allSettled(ok);
  });
});
