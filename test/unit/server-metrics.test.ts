import { describe, expect, it } from 'vitest';
import type { BatchInfo } from '../../codec/batcher.js';
import { ServerMetrics, type NodeLoad } from '../../server/metrics.js';

async function values(m: ServerMetrics, name: string): Promise<{ labels: Record<string, string | number>; value: number; metricName?: string }[]> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values as { labels: Record<string, string | number>; value: number; metricName?: string }[];
}

const batch = (over: Partial<BatchInfo> = {}): BatchInfo => ({
  kind: 'encode', size: 3, realtime: 2, bulk: 1, runMs: 40, audioSec: 0.32,
  waits: [{ priority: 'realtime', ms: 4 }, { priority: 'realtime', ms: 6 }, { priority: 'bulk', ms: 300 }],
  ...over,
});

describe('ServerMetrics', () => {
  it('keeps each instance on its own registry, so two servers in one process do not collide', async () => {
    const a = new ServerMetrics(0.08);
    const b = new ServerMetrics(0.04);
    expect((await values(a, 'tokstream_step_budget_seconds'))[0].value).toBe(0.08);
    expect((await values(b, 'tokstream_step_budget_seconds'))[0].value).toBe(0.04);
  });

  it('records batch size, run time and each window\'s queue wait by class', async () => {
    const m = new ServerMetrics(0.08);
    m.observeBatch('default', batch());
    const sizes = await values(m, 'tokstream_batch_size');
    expect(sizes.find((v) => v.metricName === 'tokstream_batch_size_count')).toMatchObject({ labels: { model: 'default', kind: 'encode' }, value: 1 });
    expect(sizes.find((v) => v.metricName === 'tokstream_batch_size_sum')?.value).toBe(3);
    const waits = await values(m, 'tokstream_queue_wait_seconds');
    const count = (priority: string) => waits.find((v) => v.metricName === 'tokstream_queue_wait_seconds_count' && v.labels.priority === priority)?.value;
    expect([count('realtime'), count('bulk')]).toEqual([2, 1]);
    const bulkSum = waits.find((v) => v.metricName === 'tokstream_queue_wait_seconds_sum' && v.labels.priority === 'bulk')?.value;
    expect(bulkSum).toBeCloseTo(0.3, 9);
  });

  it('moves the real-time factor as an average: compute seconds per audio second', async () => {
    const m = new ServerMetrics(0.08);
    m.observeBatch('default', batch({ runMs: 40, audioSec: 0.32 }));
    expect((await values(m, 'tokstream_realtime_factor'))[0].value).toBeCloseTo(0.125, 9);
    m.observeBatch('default', batch({ runMs: 80, audioSec: 0.32 }));
    expect((await values(m, 'tokstream_realtime_factor'))[0].value).toBeCloseTo(0.9 * 0.125 + 0.1 * 0.25, 9);
    m.observeBatch('default', batch({ kind: 'decode', runMs: 10, audioSec: 0 })); // nothing kept: no factor
    expect((await values(m, 'tokstream_realtime_factor')).map((v) => v.labels.kind)).toEqual(['encode']);
  });

  it('counts failed runs as model_run_failed errors', async () => {
    const m = new ServerMetrics(0.08);
    m.observeBatch('default', batch());
    expect(await values(m, 'tokstream_stream_errors_total')).toEqual([]);
    m.observeBatch('default', batch({ error: 'onnx exploded' }));
    expect(await values(m, 'tokstream_stream_errors_total')).toMatchObject([{ labels: { code: 'model_run_failed' }, value: 1 }]);
  });

  it('reads node load at scrape time, one series per model that is loaded now', async () => {
    const m = new ServerMetrics(0.08);
    let load: NodeLoad = { models: [{ model: 'a', realtimeBusyShare: 0.25, busyShare: 0.5, queueWaitMs: 30 }], ready: true, draining: false, httpJobs: 2 };
    m.watchLoad(() => load);
    expect(await values(m, 'tokstream_model_realtime_busy_share')).toMatchObject([{ labels: { model: 'a' }, value: 0.25 }]);
    expect(await values(m, 'tokstream_model_queue_wait_seconds')).toMatchObject([{ labels: { model: 'a' }, value: 0.03 }]);
    expect((await values(m, 'tokstream_ready'))[0].value).toBe(1);
    expect((await values(m, 'tokstream_http_jobs_active'))[0].value).toBe(2);
    load = { models: [{ model: 'b', realtimeBusyShare: 0.9, busyShare: 0.9, queueWaitMs: 0 }], ready: false, draining: true, httpJobs: 0 };
    expect(await values(m, 'tokstream_model_busy_share')).toMatchObject([{ labels: { model: 'b' }, value: 0.9 }]);
    expect((await values(m, 'tokstream_ready'))[0].value).toBe(0);
    expect((await values(m, 'tokstream_draining'))[0].value).toBe(1);
    expect(await m.registry.metrics()).toMatch(/^tokstream_model_busy_share\{model="b"\} 0\.9$/m);
  });
});
