import { afterEach, describe, expect, it } from 'vitest';
import { encodeAudioIn, encodeTokenPacket } from '../../protocol/stream.js';
import { Probe, startTestServer } from '../helpers/stream-harness.js';

const servers: { close(): Promise<void> }[] = [];
async function server(overrides: Parameters<typeof startTestServer>[0]) {
  const s = await startTestServer(overrides);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const KEY = 'test-key-0123456789';

describe('admission', () => {
  it('refuses streams beyond maxStreams with too_many_streams (4013); a freed slot is reusable', async () => {
    const s = await server({ maxStreams: 2 });
    const a = new Probe(s.wsUrl);
    const b = new Probe(s.wsUrl);
    await Promise.all([a.opened, b.opened]);
    const c = new Probe(s.wsUrl);
    expect(await c.closed).toBe(4013);
    expect(c.texts()[0]).toMatchObject({ type: 'error', code: 'too_many_streams', fatal: true });
    a.ws.close();
    await a.closed;
    for (let i = 0; i < 50 && s.app.tokstream.streams.connections.size > 1; i++) await new Promise((r) => setTimeout(r, 10));
    const d = new Probe(s.wsUrl);
    await d.opened;
    d.sendJson({ type: 'start', direction: 'encode' });
    expect(await d.nextText('ready')).toMatchObject({ type: 'ready' });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/tokstream_streams_refused_total\{reason="too_many_streams"\} 1/);
  });

  async function startedEncode(url: string): Promise<Probe> {
    const p = new Probe(url);
    await p.opened;
    p.sendJson({ type: 'start', direction: 'encode', format: 'f32le' });
    await p.nextText('ready');
    return p;
  }

  /** Sends `seconds` of audio at once on a started encode stream, in frames of 32 KB, and closes it. */
  function burst(p: Probe, seconds: number): Probe {
    const pcm = new Float32Array(24000 * seconds).map((_, i) => Math.sin(i / 7) * 0.3);
    for (let i = 0; i < pcm.length; i += 8000) p.ws.send(encodeAudioIn(pcm.subarray(i, i + 8000), 'f32le'));
    p.sendJson({ type: 'close' });
    return p;
  }

  async function startOutcome(url: string): Promise<string> {
    const p = new Probe(url);
    await p.opened;
    p.sendJson({ type: 'start', direction: 'encode' });
    const m = await p.next((x) => 'text' in x && (x.text.type === 'ready' || x.text.type === 'error'));
    p.ws.close();
    return 'text' in m ? (m.text.type === 'ready' ? 'ready' : m.text.code) : '?';
  }

  it('one legal burst (9 s at once, under maxAheadSec) does not refuse the streams after it, during or after its processing', async () => {
    const s = await server({ maxAheadSec: 10, maxBufferedSec: 10 });
    const p = burst(await startedEncode(s.wsUrl), 9);
    // while the burst's chunks are still queued (each waits for the one before): that is its own backlog
    expect(await startOutcome(s.wsUrl)).toBe('ready');
    expect(await p.nextText('closed', 60_000)).toMatchObject({ frames: 675 });
    for (let i = 0; i < 8; i++) expect(await startOutcome(s.wsUrl)).toBe('ready');
  });

  it('refuses start with overloaded (4013) while runnable work waits beyond the limit, and admits again once it has drained', async () => {
    // one window per run: several bursting streams make each other wait
    const s = await server({ maxAheadSec: 10, maxBufferedSec: 10, maxBatch: 1, maxBatchWaitMs: 0, admissionMaxQueueMs: 5 });
    const streams = await Promise.all(Array.from({ length: 6 }, () => startedEncode(s.wsUrl)));
    const bursts = streams.map((p) => burst(p, 4));
    const outcomes: string[] = [];
    let refused: Probe | undefined;
    while (!refused && bursts.some((b) => !b.texts().some((t) => t.type === 'closed'))) {
      const late = new Probe(s.wsUrl);
      await late.opened;
      late.sendJson({ type: 'start', direction: 'encode' });
      const m = await late.next((x) => 'text' in x && (x.text.type === 'ready' || x.text.type === 'error'));
      outcomes.push((m as { text: Record<string, string> }).text.code ?? 'ready');
      if ((m as { text: Record<string, string> }).text.code === 'overloaded') refused = late;
      else late.ws.close();
    }
    expect(outcomes).toContain('overloaded');
    expect(await refused!.closed).toBe(4013);
    for (const b of bursts) await b.nextText('closed', 60_000);
    // drained: admitted at once, every time
    expect(s.app.tokstream.batchers.get('default')!.stats()).toMatchObject({ queuedRealtime: 0, realtimeWaitMs: 0 });
    for (let i = 0; i < 4; i++) expect(await startOutcome(s.wsUrl)).toBe('ready');
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/tokstream_streams_refused_total\{reason="overloaded"\} [1-9]/);
  });
});

describe('flow control', () => {
  it('audio sent faster than real time beyond maxAheadSec ends the stream with too_fast (4029)', async () => {
    const s = await server({ maxAheadSec: 1 });
    const p = new Probe(s.wsUrl);
    await p.opened;
    p.sendJson({ type: 'start', direction: 'encode', format: 'f32le', sampleRate: 16000 });
    await p.nextText('ready');
    for (let i = 0; i < 10; i++) p.ws.send(encodeAudioIn(new Float32Array(4000), 'f32le')); // 2.5 s at once
    expect(await p.closed).toBe(4029);
    expect(p.texts().find((t) => t.type === 'error')).toMatchObject({ code: 'too_fast', fatal: true });
  });

  it('tokens sent faster than real time end a decode stream the same way', async () => {
    const s = await server({ maxAheadSec: 0.5 });
    const p = new Probe(s.wsUrl);
    await p.opened;
    p.sendJson({ type: 'start', direction: 'decode', codebooks: 1 });
    const ready = await p.nextText('ready');
    p.ws.send(encodeTokenPacket({ numCodebooks: 1, numFrames: 75, codes: new Int32Array(75) }, 0, 0, ready.codeBytes)); // 1 s
    expect(await p.closed).toBe(4029);
    expect(p.texts().find((t) => t.type === 'error')).toMatchObject({ code: 'too_fast' });
  });

  it('more unprocessed audio than maxBufferedSec ends the stream with buffer_full (4029)', async () => {
    const s = await server({ maxAheadSec: 30, maxBufferedSec: 0.2 });
    const p = new Probe(s.wsUrl);
    await p.opened;
    p.sendJson({ type: 'start', direction: 'encode', format: 's16le' });
    await p.nextText('ready');
    for (let i = 0; i < 4; i++) p.ws.send(encodeAudioIn(new Float32Array(12000), 's16le')); // 2 s faster than the model can take it at once
    expect(await p.closed).toBe(4029);
    expect(p.texts().find((t) => t.type === 'error')).toMatchObject({ code: 'buffer_full' });
  });

  it('a client that does not read its packets gets slow_consumer (4009) once maxOutboundBytes are queued; others are served', async () => {
    const s = await server({ maxAheadSec: 120, maxBufferedSec: 120, maxOutboundBytes: 256 * 1024, maxFrameBytes: 1 << 16 });
    const p = new Probe(s.wsUrl);
    await p.opened;
    p.sendJson({ type: 'start', direction: 'decode', codebooks: 1, format: 'f32le', sampleRate: 48000 });
    const ready = await p.nextText('ready');
    // stop reading: the socket's receive buffer fills, then the kernel's send buffer, then ws's queue
    (p.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    // meanwhile a healthy stream on the same model is served in full
    const healthy = new Probe(s.wsUrl);
    await healthy.opened;
    healthy.sendJson({ type: 'start', direction: 'encode', format: 'f32le' });
    await healthy.nextText('ready');
    for (let i = 0; i < 15; i++) healthy.ws.send(encodeAudioIn(new Float32Array(1600).map((_, j) => Math.sin(j / 9) * 0.3), 'f32le'));
    healthy.sendJson({ type: 'close' });
    let frame = 0;
    for (let i = 0; i < 120 && p.closeCode === undefined; i++) {
      p.ws.send(encodeTokenPacket({ numCodebooks: 1, numFrames: 75, codes: new Int32Array(75) }, i, frame, ready.codeBytes));
      frame += 75;
      await new Promise((r) => setTimeout(r, 20));
      if (s.app.tokstream.streams.connections.size === 0) break;
    }
    for (let i = 0; i < 200 && s.app.tokstream.streams.connections.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(s.app.tokstream.streams.connections.size).toBe(0);
    expect(await healthy.nextText('closed')).toMatchObject({ frames: 75, samples: 24000 });
    expect(healthy.texts().filter((t) => t.type === 'error')).toEqual([]);
    (p.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await p.closed;
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/tokstream_stream_errors_total\{code="slow_consumer"\} 1/);
  });
});

describe('auth', () => {
  const authed = () => server({ noAuth: false, apiKeys: [KEY], allowedOrigins: ['https://app.example'] });

  async function outcome(url: string, opts: ConstructorParameters<typeof Probe>[1] = {}): Promise<{ code: number | undefined; error?: string; protocol: string }> {
    const p = new Probe(url, opts);
    await p.opened;
    const protocol = p.ws.protocol;
    p.sendJson({ type: 'start', direction: 'encode' });
    const first = await p.next((m) => 'text' in m);
    if ('text' in first && first.text.type === 'ready') {
      p.ws.close();
      return { code: undefined, protocol };
    }
    return { code: await p.closed, error: 'text' in first ? first.text.code : undefined, protocol };
  }

  it('accepts a key in any documented place and refuses a missing or wrong one (unauthorized, 4001)', async () => {
    const s = await authed();
    expect(await outcome(s.wsUrl)).toMatchObject({ code: 4001, error: 'unauthorized' });
    expect(await outcome(`${s.wsUrl}?token=wrong-key-000000`)).toMatchObject({ code: 4001, error: 'unauthorized' });
    expect(await outcome(s.wsUrl, { headers: { authorization: 'Bearer nope-nope-nope' } })).toMatchObject({ code: 4001 });
    expect((await outcome(s.wsUrl, { headers: { authorization: `Bearer ${KEY}` } })).code).toBeUndefined();
    expect((await outcome(s.wsUrl, { headers: { 'x-api-key': KEY } })).code).toBeUndefined();
    expect((await outcome(`${s.wsUrl}?token=${KEY}`)).code).toBeUndefined();
    // browsers: the key travels as a subprotocol; the server answers tokstream.v1 and never echoes the key
    const viaProtocol = await outcome(s.wsUrl, { protocols: ['tokstream.v1', `tokstream.key.${KEY}`] });
    expect(viaProtocol).toEqual({ code: undefined, protocol: 'tokstream.v1' });
  });

  it('enforces the origin allow-list for browsers (origin_not_allowed, 4003); same origin passes', async () => {
    const s = await authed();
    const host = new URL(s.url).host;
    const withKey = { 'x-api-key': KEY };
    expect(await outcome(s.wsUrl, { headers: { ...withKey, origin: 'https://evil.example' } })).toMatchObject({ code: 4003, error: 'origin_not_allowed' });
    expect((await outcome(s.wsUrl, { headers: { ...withKey, origin: 'https://app.example' } })).code).toBeUndefined();
    expect((await outcome(s.wsUrl, { headers: { ...withKey, origin: `http://${host}` } })).code).toBeUndefined();
  });
});
