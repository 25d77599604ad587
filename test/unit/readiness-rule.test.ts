/** The rule behind /readyz (docs/deploy.md, "Readiness"), on numbers; test/integration/readiness.test.ts runs it on a real server. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVER_CONFIG } from '../../server/config.js';
import { notReadyReasons, saturation, type ModelLoad } from '../../server/load.js';

const LIMITS = { readyMaxBusyShare: 0.85, readyMaxQueueMs: 100 };
const calm: ModelLoad = { model: 'm', realtimeBusyShare: 0.5, busyShare: 1, queueWaitMs: 20 };

describe('saturation rule', () => {
  it('is the realtime busy share or the queue wait over its limit, whichever comes first', () => {
    expect(saturation(calm, LIMITS)).toBeUndefined(); // bulk work (busyShare 1) yields to streams: not saturated
    expect(saturation({ ...calm, realtimeBusyShare: 0.85 }, LIMITS)).toMatchObject({ code: 'saturated', model: 'm', message: expect.stringContaining('busy 85%') });
    expect(saturation({ ...calm, queueWaitMs: 100 }, LIMITS)).toBeUndefined();
    expect(saturation({ ...calm, queueWaitMs: 101 }, LIMITS)).toMatchObject({ code: 'saturated', message: expect.stringContaining('queue wait 101 ms') });
  });
});

describe('notReadyReasons', () => {
  const config = { ...DEFAULT_SERVER_CONFIG, ...LIMITS, maxStreams: 4 };
  const input = { config, loads: [calm], draining: false, closing: false, streams: 0 };

  it('is empty for a calm node with free stream slots', () => {
    expect(notReadyReasons(input)).toEqual([]);
  });

  it('gives every reason at once, shutting down before draining', () => {
    const reasons = notReadyReasons({ ...input, closing: true, draining: true, streams: 4, loads: [calm, { ...calm, model: 'x', queueWaitMs: 500 }] });
    expect(reasons.map((r) => r.code)).toEqual(['shutting_down', 'saturated', 'streams_full']);
    expect(reasons[1].model).toBe('x');
    expect(notReadyReasons({ ...input, draining: true }).map((r) => r.code)).toEqual(['draining']);
    expect(notReadyReasons({ ...input, loads: [] }).map((r) => r.code)).toEqual(['no_models']);
    expect(notReadyReasons({ ...input, streams: 3 })).toEqual([]);
  });
});
