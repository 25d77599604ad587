import type { ModelBatcher } from '../codec/batcher.js';
import type { ServerConfig } from './config.js';

/** Real-time load of one model's batcher: what /readyz judges and /metrics exports. */
export interface ModelLoad {
  model: string;
  /** Share of model capacity spent on realtime (stream) windows over the last 2 s. */
  realtimeBusyShare: number;
  /** Same, all work (bulk HTTP jobs included). */
  busyShare: number;
  /** Realtime queue wait, ms: the longest a runnable stream window queued now has waited (BatcherStats.realtimeWaitMs). */
  queueWaitMs: number;
}

export type NotReadyCode = 'draining' | 'shutting_down' | 'no_models' | 'saturated' | 'streams_full';

/** Why a node should get no new streams now (the body of a 503 from /readyz). */
export interface NotReadyReason {
  code: NotReadyCode;
  message: string;
  model?: string;
}

export function modelLoad(model: string, batcher: ModelBatcher): ModelLoad {
  const s = batcher.stats();
  return { model, realtimeBusyShare: s.realtimeBusyShare, busyShare: s.busyShare, queueWaitMs: s.realtimeWaitMs };
}

/**
 * The saturation rule: a model is saturated while its realtime busy share reaches
 * `readyMaxBusyShare` (it has no headroom left for one more stream) or its realtime queue wait
 * exceeds `readyMaxQueueMs` (windows already wait longer than real time allows). Bulk work does
 * not count: it yields to streams.
 */
export function saturation(load: ModelLoad, config: Pick<ServerConfig, 'readyMaxBusyShare' | 'readyMaxQueueMs'>): NotReadyReason | undefined {
  const model = load.model;
  if (load.realtimeBusyShare >= config.readyMaxBusyShare) {
    return { code: 'saturated', model, message: `model "${model}" busy ${pct(load.realtimeBusyShare)} of the last 2 s with streams (limit ${pct(config.readyMaxBusyShare)})` };
  }
  if (load.queueWaitMs > config.readyMaxQueueMs) {
    return { code: 'saturated', model, message: `model "${model}" queue wait ${load.queueWaitMs.toFixed(0)} ms (limit ${config.readyMaxQueueMs} ms)` };
  }
  return undefined;
}

export interface ReadinessInput {
  config: ServerConfig;
  loads: ModelLoad[];
  draining: boolean;
  closing: boolean;
  /** Open /v1/stream connections (each holds a stream slot). */
  streams: number;
}

/** Every reason the node is not ready; none means ready. */
export function notReadyReasons(s: ReadinessInput): NotReadyReason[] {
  const reasons: NotReadyReason[] = [];
  if (s.closing) reasons.push({ code: 'shutting_down', message: 'server is shutting down' });
  else if (s.draining) reasons.push({ code: 'draining', message: 'server is draining: running streams finish, new ones go elsewhere' });
  if (s.loads.length === 0) reasons.push({ code: 'no_models', message: 'no usable model loaded' });
  for (const load of s.loads) {
    const r = saturation(load, s.config);
    if (r) reasons.push(r);
  }
  if (s.streams >= s.config.maxStreams) reasons.push({ code: 'streams_full', message: `all ${s.config.maxStreams} stream slots in use` });
  return reasons;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}
