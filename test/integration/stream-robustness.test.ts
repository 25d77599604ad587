import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecModel } from '../../codec/model.js';
import { concatTokens } from '../../codec/stream-encoder.js';
import { decodeTokenPacket, encodeAudioIn, encodeTokenPacket } from '../../protocol/stream.js';
import { DEFAULT_MODEL_DIR, readPcm, speechWav } from '../helpers/fixtures.js';
import { Probe, encodeWithStreamPlan, startTestServer } from '../helpers/stream-harness.js';

let server: Awaited<ReturnType<typeof startTestServer>>;
let model: CodecModel;
let pcm: Float32Array;

beforeAll(async () => {
  server = await startTestServer({ maxAheadSec: 60, maxBufferedSec: 60, admissionMaxQueueMs: 60_000, maxFrameBytes: 8192, maxProtocolErrors: 1000, idleTimeoutMs: 3000 });
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
  pcm = readPcm(speechWav('A healthy stream next to a hostile one.'), 24000);
});
afterAll(async () => {
  await server?.close();
  await model?.release();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A well-behaved encode stream sending real-time-ish packets; resolves with its tokens. */
async function healthyStream(): Promise<{ codes: Int32Array; closeCode: number; errors: number }> {
  const p = new Probe(server.wsUrl);
  await p.opened;
  p.sendJson({ type: 'start', direction: 'encode', sampleRate: 24000, format: 'f32le' });
  await p.nextText('ready');
  for (let o = 0; o < pcm.length; o += 1600) {
    p.ws.send(encodeAudioIn(pcm.subarray(o, o + 1600), 'f32le'));
    await sleep(5);
  }
  p.sendJson({ type: 'close' });
  await p.nextText('closed', 60_000);
  const closeCode = await p.closed;
  const blocks = p.binaries().map((b) => decodeTokenPacket(b).tokens);
  return { codes: concatTokens(blocks).codes, closeCode, errors: p.texts().filter((t) => t.type === 'error').length };
}

async function expectError(p: Probe, send: () => void, code: string): Promise<Record<string, any>> {
  send();
  const e = await p.nextText('error');
  expect(e.code).toBe(code);
  expect(typeof e.message).toBe('string');
  return e;
}

describe('malformed input', () => {
  it('a flood of malformed frames gets typed errors and never disturbs a concurrent healthy stream', async () => {
    const offline = await encodeWithStreamPlan(model, pcm, 24000, 6); // 80 ms default chunk
    const healthy = healthyStream();

    const enc = new Probe(server.wsUrl);
    await enc.opened;
    await expectError(enc, () => enc.ws.send(encodeAudioIn(new Float32Array(10), 's16le')), 'not_started');
    await expectError(enc, () => enc.ws.send('{"type": "start", '), 'bad_json');
    await expectError(enc, () => enc.ws.send('[1,2,3]'), 'bad_json');
    await expectError(enc, () => enc.sendJson({ type: 'dance' }), 'unknown_type');
    await expectError(enc, () => enc.sendJson({ type: 'flush', marker: 'x' }), 'not_started');
    await expectError(enc, () => enc.sendJson({ type: 'start', direction: 'sideways' }), 'bad_message');
    await expectError(enc, () => enc.sendJson({ type: 'start', direction: 'encode', model: 'nope' }), 'model_not_found');
    await expectError(enc, () => enc.sendJson({ type: 'start', direction: 'encode', codebooks: 9 }), 'model_mismatch');
    await expectError(enc, () => enc.sendJson({ type: 'start', direction: 'encode', version: 2 }), 'unsupported_version');
    await expectError(enc, () => enc.sendJson({ type: 'start', direction: 'encode', sampleRate: 12.5 }), 'bad_message');
    enc.sendJson({ type: 'start', direction: 'encode', format: 's16le', sampleRate: 16000 });
    await enc.nextText('ready');
    await expectError(enc, () => enc.sendJson({ type: 'start', direction: 'encode' }), 'already_started');
    await expectError(enc, () => enc.ws.send(Buffer.from([1, 0, 0, 0, 7, 7, 7])), 'bad_frame'); // odd byte count
    await expectError(enc, () => enc.ws.send(Buffer.from([9, 0, 0, 0, 1, 2])), 'bad_frame'); // unknown kind
    await expectError(enc, () => enc.ws.send(Buffer.alloc(0)), 'bad_frame'); // empty
    await expectError(enc, () => enc.ws.send(encodeTokenPacket({ numCodebooks: 1, numFrames: 1, codes: new Int32Array(1) }, 0, 0, 2)), 'bad_frame'); // wrong kind for direction
    await expectError(enc, () => enc.ws.send(Buffer.alloc(8192 + 2, 1)), 'frame_too_large');
    await expectError(enc, () => enc.ws.send('x'.repeat(5000)), 'frame_too_large');
    await expectError(enc, () => enc.sendJson({ type: 'flush' }), 'bad_message');
    for (let i = 0; i < 200; i++) enc.ws.send(Buffer.from([1, 0, 0, 0, i & 0xff])); // a burst of odd frames
    for (let i = 0; i < 200; i++) await enc.nextText('error');

    const f32 = new Probe(server.wsUrl);
    await f32.opened;
    f32.sendJson({ type: 'start', direction: 'encode', format: 'f32le' });
    await f32.nextText('ready');
    await expectError(f32, () => f32.ws.send(encodeAudioIn(new Float32Array([0.1, NaN, 0.2]), 'f32le')), 'invalid_audio');
    await expectError(f32, () => f32.ws.send(Buffer.from([1, 0, 0, 0, 0, 0])), 'bad_frame'); // 2 bytes of f32

    const dec = new Probe(server.wsUrl);
    await dec.opened;
    dec.sendJson({ type: 'start', direction: 'decode', codebooks: 2 });
    await dec.nextText('ready');
    const good = { numCodebooks: 2, numFrames: 3, codes: new Int32Array([1, 2, 3, 4, 5, 6]) };
    const outside = await expectError(dec, () => dec.ws.send(encodeTokenPacket({ ...good, codes: new Int32Array([1, 2, 3, 4, 1024, 6]) }, 0, 0, 2)), 'invalid_tokens');
    expect(outside).toMatchObject({ fatal: false, expectedFrame: 0 });
    await expectError(dec, () => dec.ws.send(encodeTokenPacket({ numCodebooks: 3, numFrames: 1, codes: new Int32Array(3) }, 0, 0, 2)), 'model_mismatch');
    await expectError(dec, () => dec.ws.send(encodeTokenPacket(good, 0, 5, 2)), 'frame_gap');
    await expectError(dec, () => dec.ws.send(encodeTokenPacket(good, 0, 0, 4)), 'bad_frame'); // wrong code width
    await expectError(dec, () => dec.ws.send(encodeTokenPacket(good, 0, 0, 2).subarray(0, 20)), 'bad_frame'); // truncated
    await expectError(dec, () => dec.ws.send(encodeAudioIn(new Float32Array(4), 's16le')), 'bad_frame'); // audio into decode
    // after all that the decode stream still works, from the frame the errors named
    dec.ws.send(encodeTokenPacket(good, 0, 0, 2));
    dec.sendJson({ type: 'close' });
    const closed = await dec.nextText('closed');
    expect(closed).toMatchObject({ frames: 3, samples: 3 * 320 });

    // beyond 4x maxFrameBytes the WebSocket layer cuts the connection (documented 1009)
    enc.ws.send(Buffer.alloc(4 * 8192 + 100, 1));
    expect(await enc.closed).toBe(1009);
    f32.ws.terminate();

    const h = await healthy;
    expect(h.closeCode).toBe(1000);
    expect(h.errors).toBe(0);
    expect(h.codes).toEqual(offline.codes);
  });

  it('too many refused messages end the stream with too_many_errors (4000)', async () => {
    const s = await startTestServer({ maxProtocolErrors: 5 });
    try {
      const p = new Probe(s.wsUrl);
      await p.opened;
      for (let i = 0; i < 10; i++) p.ws.send('nope');
      expect(await p.closed).toBe(4000);
      const codes = p.texts().map((t) => t.code);
      expect(codes.slice(0, 5)).toEqual(['bad_json', 'bad_json', 'bad_json', 'bad_json', 'bad_json']);
      expect(codes).toContain('too_many_errors');
    } finally {
      await s.close();
    }
  });
});

describe('lifecycle', () => {
  function timers(): number {
    return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  }

  it('a disconnect in the middle of a stream releases its state, queued work and timers', async () => {
    const { streams, batchers, metrics } = server.app.tokstream;
    const batcher = batchers.get('default')!;
    await sleep(50);
    const baseline = timers();
    const p = new Probe(server.wsUrl);
    await p.opened;
    p.sendJson({ type: 'start', direction: 'encode', format: 'f32le', chunkMs: 40 });
    await p.nextText('ready');
    expect(streams.connections.size).toBe(1);
    // seconds of audio at once: dozens of windows queue in the batcher; cut the connection while they wait
    for (let o = 0; o < pcm.length; o += 1600) p.ws.send(encodeAudioIn(pcm.subarray(o, o + 1600), 'f32le'));
    for (let i = 0; i < 500 && batcher.stats().queuedRealtime === 0; i++) await sleep(1);
    expect(batcher.stats().queuedRealtime).toBeGreaterThan(0);
    expect(batcher.stats().carries).toBe(1); // the stream's stateful encoder chunks
    p.ws.terminate();
    for (let i = 0; i < 100 && streams.connections.size > 0; i++) await sleep(20);
    expect(streams.connections.size).toBe(0);
    for (let i = 0; i < 100 && batcher.stats().inFlight > 0; i++) await sleep(10);
    expect(batcher.stats()).toMatchObject({ queuedRealtime: 0, queuedBulk: 0, inFlight: 0, streams: 0, carries: 0 });
    const active = await metrics.activeStreams.get();
    expect(active.values.reduce((s, v) => s + v.value, 0)).toBe(0);
    expect(timers()).toBeLessThanOrEqual(baseline);
  });

  it('an idle stream times out (idle_timeout, 4008); keepalive keeps it open', async () => {
    const s = await startTestServer({ idleTimeoutMs: 400 });
    try {
      const kept = new Probe(s.wsUrl);
      const idle = new Probe(s.wsUrl);
      await Promise.all([kept.opened, idle.opened]);
      const ka = setInterval(() => kept.sendJson({ type: 'keepalive' }), 100);
      expect(await idle.closed).toBe(4008);
      expect(idle.texts()[0]).toMatchObject({ type: 'error', code: 'idle_timeout', fatal: true });
      expect(kept.closeCode).toBeUndefined();
      clearInterval(ka);
      expect(await kept.closed).toBe(4008);
    } finally {
      await s.close();
    }
  });

  it('server shutdown closes open streams with 1001 shutting_down', async () => {
    const s = await startTestServer();
    const p = new Probe(s.wsUrl);
    await p.opened;
    p.sendJson({ type: 'start', direction: 'encode' });
    await p.nextText('ready');
    await s.close();
    expect(await p.closed).toBe(1001);
    expect(p.texts().at(-1)).toMatchObject({ code: 'shutting_down' });
  });
});
