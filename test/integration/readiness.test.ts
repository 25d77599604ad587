import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openEncodeStream } from '../../clients/ts/client.js';
import { ModelBatcher } from '../../codec/batcher.js';
import { CodecModel } from '../../codec/model.js';
import { StreamEncoder, type EncodeWindow } from '../../codec/stream-encoder.js';
import { modelLoad, saturation } from '../../server/load.js';
import { DEFAULT_MODEL_DIR, readPcm, speechWav } from '../helpers/fixtures.js';
import { until } from '../helpers/server-process.js';
import { startTestServer } from '../helpers/stream-harness.js';

// The saturation rule behind /readyz (docs/deploy.md, "Readiness"), on the real batcher and model.
const LIMITS = { readyMaxBusyShare: 0.85, readyMaxQueueMs: 100 };
let model: CodecModel;
let windows: EncodeWindow[];

beforeAll(async () => {
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
  const enc = new StreamEncoder(model.manifest, { chunkFrames: 6 });
  windows = enc.push(readPcm(speechWav('Saturation is measured, not guessed, from the batcher itself.'), 24000)).slice(2, 34);
});
afterAll(async () => {
  await model?.release();
});

// the rule on numbers: test/unit/readiness-rule.test.ts
describe('saturation rule', () => {
  it('reads saturation from a real batcher under more realtime work than it can run, and recovers', async () => {
    const b = new ModelBatcher(model, { maxBatch: 2, maxWaitMs: 1, shareWindowMs: 500 });
    expect(saturation(modelLoad('default', b), LIMITS)).toBeUndefined();
    // 32 streams' windows at once, 2 per run: the queue is far behind real time (80 ms windows)
    const all = Promise.all(windows.map((w, i) => b.submitEncode(w, { streamId: `s${i}` })));
    const seen: ReturnType<typeof saturation>[] = [];
    const probe = setInterval(() => seen.push(saturation(modelLoad('default', b), LIMITS)), 10);
    await all;
    clearInterval(probe);
    const verdict = seen.find((v) => v !== undefined);
    expect(verdict?.code).toBe('saturated');
    const busy = modelLoad('default', b);
    expect(busy.realtimeBusyShare).toBeGreaterThan(0);
    expect(busy.realtimeBusyShare).toBeCloseTo(busy.busyShare, 9); // all of it realtime
    await new Promise((r) => setTimeout(r, 600)); // one window of idleness
    const idle = modelLoad('default', b);
    expect(idle).toMatchObject({ realtimeBusyShare: 0, busyShare: 0, queueWaitMs: 0 });
    expect(saturation(idle, LIMITS)).toBeUndefined();
    await b.close();
  });

  it('does not count bulk (HTTP) work: it yields to streams', async () => {
    const b = new ModelBatcher(model, { maxBatch: 2, maxWaitMs: 1, shareWindowMs: 500 });
    const loads: ReturnType<typeof modelLoad>[] = [];
    const probe = setInterval(() => loads.push(modelLoad('default', b)), 10);
    await Promise.all(windows.map((w, i) => b.submitEncode(w, { streamId: `job${i}`, priority: 'bulk' })));
    clearInterval(probe);
    expect(Math.max(...loads.map((l) => l.busyShare))).toBeGreaterThan(0); // counted as model work (how much depends on the machine)
    expect(loads.every((l) => l.realtimeBusyShare === 0 && l.queueWaitMs === 0)).toBe(true);
    expect(loads.every((l) => saturation(l, LIMITS) === undefined)).toBe(true);
    await b.close();
  });
});

describe('/readyz and /metrics under load (in-process server)', () => {
  it('turns /readyz 503 `saturated` while a stream outruns the model, exports the load, then recovers', async () => {
    // a queue-wait budget of 1 ms: any burst of windows saturates
    const server = await startTestServer({ readyMaxQueueMs: 1, admissionMaxQueueMs: 5000, maxBatch: 1 });
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      // several streams bursting at once: each one's windows wait behind the others' (a stream's own
      // backlog does not count as queue wait, docs/deploy.md)
      const pcm = readPcm(speechWav('A burst of audio all at once, from several streams together.'), 24000);
      const streams = await Promise.all(Array.from({ length: 4 }, () => openEncodeStream({ url: server.wsUrl, WebSocket: WebSocket as never, sampleRate: 24000 })));
      for (const s of streams) s.write(pcm);
      const flushed = Promise.all(streams.map((s) => s.flush()));
      let body: Record<string, any> = {};
      await until(async () => {
        const r = await fetch(`${server.url}/readyz`);
        body = (await r.json()) as Record<string, any>;
        return r.status === 503;
      }, 10_000, '/readyz to report saturation');
      expect(body.reasons).toEqual([expect.objectContaining({ code: 'saturated', model: 'default' })]);
      expect(body.load[0].queueWaitMs).toBeGreaterThan(1);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/^tokstream_ready 0$/m);
      expect(metrics).toMatch(/^tokstream_draining 0$/m);
      expect(Number(/^tokstream_model_realtime_busy_share\{model="default"\} (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
      expect(Number(/^tokstream_model_queue_wait_seconds\{model="default"\} (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0.001);
      expect(metrics).toMatch(/^tokstream_model_busy_share\{model="default"\} /m);
      expect(metrics).toMatch(/^tokstream_http_jobs_active 0$/m);
      await flushed;
      await Promise.all(streams.map((s) => s.close()));
      await until(async () => (await fetch(`${server.url}/readyz`)).status === 200, 10_000, '/readyz to recover');
      expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/^tokstream_ready 1$/m);
    } finally {
      await server.close();
    }
  });
});
