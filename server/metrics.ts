import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchInfo } from '../codec/batcher.js';
import type { ModelLoad } from './load.js';

/** What the load gauges read at scrape time. */
export interface NodeLoad {
  models: ModelLoad[];
  ready: boolean;
  draining: boolean;
  httpJobs: number;
}

/** Step latencies around typical real-time budgets (a chunk is 20-200 ms). */
const STEP_BUCKETS = [0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2];

/**
 * Prometheus metrics of one server instance, on its own registry (several apps in one
 * process, as in tests, must not collide on the global one).
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({ name: 'tokstream_ws_connections', help: 'Open WebSocket connections (stream slots in use)', registers: [this.registry] });
  readonly activeStreams = new Gauge({ name: 'tokstream_streams_active', help: 'Started streams', labelNames: ['model', 'direction'] as const, registers: [this.registry] });
  readonly streamsTotal = new Counter({ name: 'tokstream_streams_total', help: 'Streams started', labelNames: ['model', 'direction'] as const, registers: [this.registry] });
  readonly refused = new Counter({ name: 'tokstream_streams_refused_total', help: 'Connections or starts refused', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly cut = new Counter({
    name: 'tokstream_ws_cut_total', help: 'WebSocket connections dropped without a completed close handshake (the client sees 1006), by the error it never read or no_pong',
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  readonly errors = new Counter({ name: 'tokstream_stream_errors_total', help: 'Errors sent to stream clients, by code', labelNames: ['code'] as const, registers: [this.registry] });
  readonly batchSize = new Histogram({
    name: 'tokstream_batch_size', help: 'Windows per ONNX run', labelNames: ['model', 'kind'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: 'tokstream_queue_wait_seconds', help: 'Time a window waited in the batcher', labelNames: ['model', 'priority'] as const,
    buckets: STEP_BUCKETS, registers: [this.registry],
  });
  readonly stepSeconds = new Histogram({
    name: 'tokstream_step_seconds', help: 'ONNX run duration per batch (compare with tokstream_step_budget_seconds)', labelNames: ['model', 'kind'] as const,
    buckets: STEP_BUCKETS, registers: [this.registry],
  });
  readonly stepBudget = new Gauge({ name: 'tokstream_step_budget_seconds', help: 'Real-time budget of one step: the default chunk duration', registers: [this.registry] });
  readonly realtimeFactor = new Gauge({
    name: 'tokstream_realtime_factor', help: 'Model compute seconds per audio second, moving average (< 1 keeps real time)', labelNames: ['model', 'kind'] as const,
    registers: [this.registry],
  });
  readonly packetLatency = new Histogram({
    name: 'tokstream_packet_latency_seconds', help: 'From a window being ready (its last input arrived) to its packet being sent', labelNames: ['direction'] as const,
    buckets: STEP_BUCKETS, registers: [this.registry],
  });
  readonly mediaSeconds = new Counter({ name: 'tokstream_media_seconds_total', help: 'Audio seconds processed by streams', labelNames: ['model', 'direction'] as const, registers: [this.registry] });
  private readonly rtf = new Map<string, number>();

  constructor(stepBudgetSec: number) {
    collectDefaultMetrics({ register: this.registry, prefix: 'tokstream_' });
    this.stepBudget.set(stepBudgetSec);
  }

  /**
   * Per-node real-time load, read from the batchers at scrape time (docs/deploy.md, "Autoscaling"):
   * model busy shares, realtime queue wait, readiness and drain state, HTTP jobs running.
   */
  watchLoad(read: () => NodeLoad): void {
    const registers = [this.registry];
    const perModel = (name: string, help: string, value: (m: ModelLoad) => number) =>
      new Gauge({
        name, help, labelNames: ['model'] as const, registers,
        collect() {
          this.reset();
          for (const m of read().models) this.set({ model: m.model }, value(m));
        },
      });
    perModel('tokstream_model_realtime_busy_share', 'Share of model capacity spent on stream (realtime) windows over the last 2 s; scale on this', (m) => m.realtimeBusyShare);
    perModel('tokstream_model_busy_share', 'Share of model capacity spent running, bulk HTTP work included, over the last 2 s', (m) => m.busyShare);
    perModel('tokstream_model_queue_wait_seconds', 'Realtime queue wait now: recent mean or oldest queued window, whichever is larger', (m) => m.queueWaitMs / 1000);
    const flag = (name: string, help: string, value: (l: NodeLoad) => number) =>
      new Gauge({ name, help, registers, collect() { this.set(value(read())); } });
    flag('tokstream_ready', '1 while /readyz answers 200', (l) => Number(l.ready));
    flag('tokstream_draining', '1 once a drain (SIGTERM) has begun', (l) => Number(l.draining));
    flag('tokstream_http_jobs_active', 'HTTP encode/decode jobs running', (l) => l.httpJobs);
  }

  observeBatch(model: string, info: BatchInfo): void {
    this.batchSize.observe({ model, kind: info.kind }, info.size);
    this.stepSeconds.observe({ model, kind: info.kind }, info.runMs / 1000);
    for (const w of info.waits) this.queueWait.observe({ model, priority: w.priority }, w.ms / 1000);
    if (info.audioSec > 0) {
      const key = `${model}\0${info.kind}`;
      const sample = info.runMs / 1000 / info.audioSec;
      const ema = 0.9 * (this.rtf.get(key) ?? sample) + 0.1 * sample;
      this.rtf.set(key, ema);
      this.realtimeFactor.set({ model, kind: info.kind }, ema);
    }
    if (info.error) this.errors.inc({ code: 'model_run_failed' });
  }
}
