import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeTokenPacket } from '../../protocol/stream.js';
import { joinRoom, openRoomPublisher, type RoomEvent } from '../../clients/ts/room-client.js';
import { KIND_ROOM_TOKENS, decodeRoomPacket } from '../../protocol/rooms.js';
import { readPcm, speechWav } from '../helpers/fixtures.js';
import { collect, ownPackets, until } from '../helpers/rooms.js';
import { Probe, startTestServer } from '../helpers/stream-harness.js';

const API_KEY = 'rooms-api-key-1';
const PUB_A = 'room-publisher-a';
const LISTEN_A = 'room-listener-a';
let server: Awaited<ReturnType<typeof startTestServer>>;
let base: string;
const speech = readPcm(speechWav('Rooms relay tokens to every listener, never audio.'), 16000);

beforeAll(async () => {
  server = await startTestServer({
    noAuth: false, apiKeys: [API_KEY], roomKeys: [`${PUB_A}:publish:a`, `${LISTEN_A}:listen:a`, `${LISTEN_A}:listen:lobby`],
    roomMaxQueuedBytes: 64 * 1024, roomStallMs: 400, admissionMaxQueueMs: 10_000,
  });
  base = server.url.replace('http', 'ws');
});
afterAll(async () => {
  await server?.close();
});

const tokenEvents = (events: RoomEvent[], publisher?: number) =>
  events.flatMap((e) => (e.type === 'tokens' && (publisher === undefined || e.publisher === publisher) ? [e] : []));

describe('rooms: publish and listen', () => {
  it('relays the publisher\'s token packets verbatim, numbered, to early and late listeners', async () => {
    const early = await joinRoom({ url: `${base}/v1/rooms/listen`, room: 'lobby', apiKey: LISTEN_A, WebSocket: WebSocket as never });
    expect(early.joined.publishers).toEqual([]);
    const e = collect(early);
    const pub = await openRoomPublisher({ url: `${base}/v1/rooms/publish`, room: 'lobby', label: 'alice', epochMs: 1234.5, apiKey: API_KEY, WebSocket: WebSocket as never, sampleRate: 16000, codebooks: 4, chunkMs: 80 });
    expect(pub.ready).toMatchObject({ room: 'lobby', publisher: 1, codebooks: 4 });
    const { packets: own, done: echo } = ownPackets(pub);
    const half = Math.floor(speech.length / 2);
    pub.write(speech.subarray(0, half));
    await pub.flush();
    await until(() => tokenEvents(e.events).length === own.length);
    // a late joiner: starts at the next packet, told where the publisher's timeline is
    const late = await joinRoom({ url: `${base}/v1/rooms/listen`, room: 'lobby', apiKey: API_KEY, WebSocket: WebSocket as never });
    const l = collect(late);
    expect(late.joined.publishers).toHaveLength(1);
    expect(late.joined.publishers[0]).toMatchObject({ publisher: 1, label: 'alice', epochMs: 1234.5, codebooks: 4, model: 'default', nextFrame: own.at(-1)!.firstFrame + own.at(-1)!.tokens.numFrames });
    const framesBeforeLate = late.joined.publishers[0].nextFrame;
    pub.write(speech.subarray(half));
    const closed = await pub.close();
    await echo;
    await until(() => l.events.some((x) => x.type === 'publisher_left') && e.events.some((x) => x.type === 'publisher_left'));

    expect(e.events[0]).toMatchObject({ type: 'publisher_joined', publisher: { publisher: 1, label: 'alice' } });
    const earlyTokens = tokenEvents(e.events, 1);
    // every packet, in order, identical to what the publisher itself received
    expect(earlyTokens.map((t) => t.packet)).toEqual(own);
    expect(closed.frames).toBe(own.at(-1)!.firstFrame + own.at(-1)!.tokens.numFrames);
    expect(e.events.at(-1)).toEqual({ type: 'publisher_left', publisher: 1, frames: closed.frames });
    const lateTokens = tokenEvents(l.events, 1);
    expect(lateTokens[0].packet.firstFrame).toBe(framesBeforeLate);
    expect(lateTokens.map((t) => t.packet)).toEqual(own.filter((p) => p.firstFrame >= framesBeforeLate));
    early.close();
    late.close();
    await Promise.all([e.done, l.done]);
  });

  it('carries several publishers in one room and sends listeners tokens only', async () => {
    const probe = new Probe(`${base}/v1/rooms/listen`, { headers: { authorization: `Bearer ${API_KEY}` } });
    await probe.opened;
    probe.sendJson({ type: 'join', room: 'duo' });
    await probe.nextText('joined');
    const pubs = await Promise.all([1, 2].map((i) => openRoomPublisher({ url: `${base}/v1/rooms/publish`, room: 'duo', label: `p${i}`, apiKey: API_KEY, WebSocket: WebSocket as never, sampleRate: 16000, codebooks: i * 2 })));
    const drains = pubs.map(async (p) => {
      for await (const _ of p) void _;
    });
    for (const p of pubs) p.write(speech.subarray(0, 16000));
    await Promise.all(pubs.map((p) => p.close()));
    await Promise.all(drains);
    await probe.nextText('publisher_left');
    await probe.nextText('publisher_left');
    const frames = probe.binaries();
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.every((f) => f[0] === KIND_ROOM_TOKENS)).toBe(true);
    const byPublisher = new Map<number, number[]>();
    for (const f of frames) {
      const { publisher, packet } = decodeRoomPacket(f);
      byPublisher.set(publisher, [...(byPublisher.get(publisher) ?? []), packet.tokens.numCodebooks]);
    }
    const ids = pubs.map((p) => p.ready.publisher).sort();
    expect([...byPublisher.keys()].sort()).toEqual(ids);
    // each publisher's own codebook count: 2 and 4
    expect(new Set(byPublisher.get(pubs[0].ready.publisher))).toEqual(new Set([2]));
    expect(new Set(byPublisher.get(pubs[1].ready.publisher))).toEqual(new Set([4]));
    expect(probe.texts().filter((t) => t.type === 'publisher_joined').map((t) => t.publisher.label).sort()).toEqual(['p1', 'p2']);
    probe.ws.close();
  });
});

describe('rooms: room-scoped keys', () => {
  async function refusal(path: string, key: string, first: object): Promise<{ code: number; error?: Record<string, any> }> {
    const p = new Probe(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
    await p.opened;
    if (p.closeCode === undefined) p.sendJson(first);
    const code = await p.closed;
    return { code, error: p.texts().find((t) => t.type === 'error') };
  }

  it('a listen key may listen to its rooms only, and may not publish or open plain streams', async () => {
    const ok = await joinRoom({ url: `${base}/v1/rooms/listen`, room: 'a', apiKey: LISTEN_A, WebSocket: WebSocket as never });
    ok.close();
    expect(await refusal('/v1/rooms/listen', LISTEN_A, { type: 'join', room: 'b' })).toMatchObject({ code: 4001, error: { code: 'unauthorized', message: expect.stringContaining('room "b"') } });
    expect(await refusal('/v1/rooms/publish', LISTEN_A, { type: 'start', direction: 'encode', room: 'a' })).toMatchObject({ code: 4001, error: { code: 'unauthorized' } });
    expect(await refusal('/v1/stream', LISTEN_A, { type: 'start', direction: 'encode' })).toMatchObject({ code: 4001, error: { code: 'unauthorized' } });
    // nor the HTTP API (it knows API keys only); the decoder assets listeners need are open to it
    expect((await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${LISTEN_A}` } })).status).toBe(401);
    expect((await fetch(`${server.url}/v1/models/default/manifest.json`, { headers: { authorization: `Bearer ${LISTEN_A}` } })).status).toBe(200);
    expect(await refusal('/v1/rooms/listen', 'not-a-key-0000', { type: 'join', room: 'a' })).toMatchObject({ code: 4001, error: { code: 'unauthorized' } });
  });

  it('a publish key may publish to and listen to its room, nowhere else', async () => {
    const pub = await openRoomPublisher({ url: `${base}/v1/rooms/publish`, room: 'a', apiKey: PUB_A, WebSocket: WebSocket as never });
    expect(pub.ready.room).toBe('a');
    pub.abort();
    const sub = await joinRoom({ url: `${base}/v1/rooms/listen`, room: 'a', apiKey: PUB_A, WebSocket: WebSocket as never });
    sub.close();
    expect(await refusal('/v1/rooms/publish', PUB_A, { type: 'start', direction: 'encode', room: 'lobby' })).toMatchObject({ code: 4001 });
  });

  it('refuses bad room messages with typed, non-fatal errors', async () => {
    const p = new Probe(`${base}/v1/rooms/listen`, { headers: { authorization: `Bearer ${API_KEY}` } });
    await p.opened;
    p.sendJson({ type: 'join', room: '../etc' });
    expect(await p.nextText('error')).toMatchObject({ code: 'bad_message', fatal: false });
    p.ws.send(Buffer.from([16, 0, 0, 0]));
    expect(await p.nextText('error')).toMatchObject({ code: 'bad_frame', fatal: false });
    p.sendJson({ type: 'start', direction: 'encode' });
    expect(await p.nextText('error')).toMatchObject({ code: 'unknown_type', fatal: false });
    p.sendJson({ type: 'join', room: 'ok' });
    await p.nextText('joined');
    p.sendJson({ type: 'join', room: 'ok2' });
    expect(await p.nextText('error')).toMatchObject({ code: 'already_started' });
    p.sendJson({ type: 'close' });
    expect(await p.closed).toBe(1000);
    const q = new Probe(`${base}/v1/rooms/publish`, { headers: { authorization: `Bearer ${API_KEY}` } });
    await q.opened;
    q.sendJson({ type: 'start', direction: 'decode', room: 'x' });
    expect(await q.nextText('error')).toMatchObject({ code: 'bad_message', message: expect.stringContaining('encode') });
    q.sendJson({ type: 'start', direction: 'encode' });
    expect(await q.nextText('error')).toMatchObject({ code: 'bad_message', message: expect.stringContaining('room') });
    q.ws.close();
  });
});

describe('rooms: slow listeners', () => {
  it('a listener that stops reading is detected by its unconfirmed bytes, dropped per policy and closed with slow_consumer, not by the ping timeout', async () => {
    // pings every 60 s: a close within seconds cannot be the ping timeout
    const s = await startTestServer({ roomMaxQueuedBytes: 16 * 1024, roomStallMs: 400, pingIntervalMs: 60_000 });
    const url = s.url.replace('http', 'ws') + '/v1/rooms/listen';
    const join = async () => {
      const p = new Probe(url);
      await p.opened;
      p.sendJson({ type: 'join', room: 'slow' });
      return Object.assign(p, { subscriberId: (await p.nextText('joined')).subscriberId as string });
    };
    try {
      const [fast, slow] = [await join(), await join()];
      // stops reading: the kernel's socket buffers (megabytes on loopback) take what is sent, ws's bufferedAmount stays 0
      (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const room = s.app.tokstream.rooms.registry.get('slow');
      const info = room.addPublisher({ streamId: 's-test', model: 'default', modelVersion: '1', modelSampleRate: 24000, hopLength: 320, frameRate: 75, codebooks: 8, codebookSize: 1024, codeBytes: 2, chunkFrames: 100, decoderLookaheadFrames: 1 });
      const slowListener = [...s.app.tokstream.rooms.listeners].find((l) => l.id === slow.subscriberId)!;
      const frames = 100; // 1.6 KB packets
      const codes = new Int32Array(8 * frames).map((_, i) => i % 1024);
      const t0 = performance.now();
      let count = 0;
      let worstPublishMs = 0;
      while (!slowListener.failure && performance.now() - t0 < 20_000) {
        const t = performance.now();
        room.publish(info.publisher, encodeTokenPacket({ numCodebooks: 8, numFrames: frames, codes }, count, count * frames, 2));
        worstPublishMs = Math.max(worstPublishMs, performance.now() - t);
        count++;
        await until(() => fast.binaries().length === count); // the healthy listener keeps up
        await new Promise((r) => setTimeout(r, 5));
      }
      const closedAfterMs = performance.now() - t0;
      expect(slowListener.failure).toBe('slow_consumer');
      expect(closedAfterMs).toBeLessThan(10_000);
      expect(slowListener.dropped).toBeGreaterThan(0);
      expect(slowListener.sent + slowListener.dropped).toBe(count);
      // it was dropped on what it had not confirmed: far below what the kernel buffers could have hidden
      expect(slowListener.sent * (16 + 8 + frames * 16)).toBeLessThan(64 * 1024);
      // the healthy listener got every packet, in order; publishing never waited
      room.removePublisher(info.publisher);
      await fast.nextText('publisher_left');
      expect(fast.binaries().map((f) => decodeRoomPacket(f).packet.firstFrame)).toEqual(Array.from({ length: count }, (_, i) => i * frames));
      expect(worstPublishMs).toBeLessThan(80);
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`tokstream_room_packets_dropped_total ${slowListener.dropped}\\b`));
      expect(metrics).toMatch(/tokstream_room_slow_listeners_total 1\b/);
      // the client, not reading, never completes the close handshake: the server cuts it and counts that
      const cut = async () => /tokstream_ws_cut_total\{reason="slow_consumer"\} 1\b/.test(await (await fetch(`${s.url}/metrics`)).text());
      for (let i = 0; i < 100 && !(await cut()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await cut()).toBe(true);
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      // reading again, it finds the typed error and close frame that waited in the socket buffers
      expect(await slow.closed).toBe(4009);
      expect(slow.texts().at(-1)).toMatchObject({ type: 'error', code: 'slow_consumer', fatal: true });
      const delivered = slow.binaries().map((f) => decodeRoomPacket(f).packet.firstFrame);
      expect(delivered.length).toBe(slowListener.sent);
      expect(delivered.every((f, i) => i === 0 || f > delivered[i - 1])).toBe(true);

      fast.sendJson({ type: 'close' });
      expect(await fast.nextText('closed')).toEqual({ type: 'closed', frames: count * frames, dropped: 0, packets: count, packetsDropped: 0 });
    } finally {
      await s.close();
    }
  });

  it('a listener that answers no ping for a ping interval is closed with slow_consumer; a silent stream is cut and counted as no_pong', async () => {
    const s = await startTestServer({ pingIntervalMs: 300 });
    try {
      const listener = new Probe(s.url.replace('http', 'ws') + '/v1/rooms/listen');
      await listener.opened;
      listener.sendJson({ type: 'join', room: 'quiet' });
      await listener.nextText('joined');
      const stream = new Probe(s.wsUrl);
      await stream.opened;
      for (const p of [listener, stream]) (p.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const [l] = [...s.app.tokstream.rooms.listeners];
      await until(() => l.failure !== undefined, 5000);
      expect(l.failure).toBe('slow_consumer');
      const text = async () => (await fetch(`${s.url}/metrics`)).text();
      await until(() => s.app.tokstream.streams.connections.size === 0, 5000);
      const m = await text();
      expect(m).toMatch(/tokstream_ws_cut_total\{reason="no_pong"\} 1\b/);
      expect(m).toMatch(/tokstream_room_slow_listeners_total 1\b/);
    } finally {
      await s.close();
    }
  });
});
