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

// scheduling (fairness, priorities, admission, cancellation): test/unit/batcher.test.ts, with a fake model
describe('ModelBatcher on the real model', () => {
  it('stacks windows of many streams into few runs, with the results of separate runs', async () => {
    const { b, runs } = batcher({ maxBatch: 8, maxWaitMs: 20 });
    const got = await Promise.all(windows.slice(0, 8).map((w, i) => b.submitEncode(w, { streamId: `s${i}` })));
    expect(runs.map((r) => r.size)).toEqual([8]);
    const alone = await model.encodeWindows(windows.slice(0, 8));
    got.forEach((g, i) => expect(g.codes).toEqual(alone[i].codes));
    await b.close();
  });
});
