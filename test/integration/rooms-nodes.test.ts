import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeTokenPacket } from '../../protocol/stream.js';
import { joinRoom, openRoomPublisher, type RoomEvent, type RoomSubscription } from '../../clients/ts/room-client.js';
import { decodeRoomPacket } from '../../protocol/rooms.js';
import { readPcm, speechWav } from '../helpers/fixtures.js';
import { startRedis } from '../helpers/redis-server.js';
import { collect, ownPackets, until } from '../helpers/rooms.js';
import { Probe, defaultOnlyModelsDir, startTestServer } from '../helpers/stream-harness.js';

/** Rooms across nodes: a real redis-server, two in-process servers (A, B) and, for kill -9, a server process. */
const API_KEY = 'nodes-api-key-1';
const LISTEN_KEY = 'lobby-listen-key';
const HEARTBEAT_MS = 500;
/** What docs/deploy.md states: a dead node's publishers end within 5 heartbeats (4, plus timer delays). */
const END_BOUND_MS = 5 * HEARTBEAT_MS;
const ROOT = resolve(import.meta.dirname, '..', '..');
let redis: Awaited<ReturnType<typeof startRedis>>;
let db: Redis;
let a: Awaited<ReturnType<typeof startTestServer>>;
let b: Awaited<ReturnType<typeof startTestServer>>;
const speech = readPcm(speechWav('A room spans two servers: one speaks, every node relays.'), 16000);

beforeAll(async () => {
  redis = await startRedis();
  db = new Redis(redis.url);
  const common = { noAuth: false, apiKeys: [API_KEY], redisUrl: redis.url, redisHeartbeatMs: HEARTBEAT_MS, maxRoomListeners: 4, admissionMaxQueueMs: 10_000, roomMaxQueuedBytes: 16 * 1024, roomStallMs: 400, pingIntervalMs: 60_000 };
  // only A knows the room key: a key accepted on one node is accepted on every node
  a = await startTestServer({ ...common, roomKeys: [`${LISTEN_KEY}:listen:lobby`] });
  b = await startTestServer(common);
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  db?.disconnect();
  await redis?.stop();
});

const ws = (s: { url: string }) => s.url.replace('http', 'ws');
const listen = (s: { url: string }, room: string, apiKey = API_KEY) => joinRoom({ url: `${ws(s)}/v1/rooms/listen`, room, apiKey, WebSocket: WebSocket as never });

const packets = (events: RoomEvent[]) => events.flatMap((e) => (e.type === 'tokens' ? [e.packet] : []));

describe('rooms across two nodes through Redis', () => {
  it('a publisher on A reaches listeners on A and B with identical, ordered, numbered packets', async () => {
    const subs = [await listen(a, 'lobby'), await listen(b, 'lobby'), await listen(b, 'lobby', LISTEN_KEY)];
    const got = subs.map(collect);
    const pub = await openRoomPublisher({ url: `${ws(a)}/v1/rooms/publish`, room: 'lobby', label: 'alice', apiKey: API_KEY, WebSocket: WebSocket as never, sampleRate: 16000, codebooks: 4 });
    const { packets: own, done: echo } = ownPackets(pub);
    pub.write(speech);
    const closed = await pub.close();
    await echo;
    await until(() => got.every((g) => g.events.some((e) => e.type === 'publisher_left')), 20_000, 'publisher_left everywhere');
    expect(own.length).toBeGreaterThan(5);
    for (const g of got) {
      expect(g.events[0]).toMatchObject({ type: 'publisher_joined', publisher: { publisher: pub.ready.publisher, label: 'alice', codebooks: 4 } });
      expect(packets(g.events)).toEqual(own); // seq and firstFrame are the publisher's own, no gap
      expect(g.events.at(-1)).toEqual({ type: 'publisher_left', publisher: pub.ready.publisher, frames: closed.frames });
    }
    for (const s of subs) s.close();
    await Promise.all(got.map((g) => g.done));
  });

  it('a late joiner on a node new to the room learns the publisher and its timeline from Redis', async () => {
    const pub = await openRoomPublisher({ url: `${ws(a)}/v1/rooms/publish`, room: 'late', apiKey: API_KEY, WebSocket: WebSocket as never, sampleRate: 16000, codebooks: 2 });
    const { packets: own, done: echo } = ownPackets(pub);
    const half = Math.floor(speech.length / 2);
    pub.write(speech.subarray(0, half));
    await pub.flush();
    const late = await listen(b, 'late');
    const l = collect(late);
    const next = own.at(-1)!.firstFrame + own.at(-1)!.tokens.numFrames;
    expect(late.joined.publishers).toEqual([expect.objectContaining({ publisher: pub.ready.publisher, codebooks: 2, nextFrame: next })]);
    pub.write(speech.subarray(half));
    await pub.close();
    await echo;
    await until(() => l.events.some((e) => e.type === 'publisher_left'));
    expect(packets(l.events)).toEqual(own.filter((p) => p.firstFrame >= next));
    late.close();
    await l.done;
  });

  it('a never-reading listener on B loses packets per policy; the others get every one', async () => {
    const join = async (s: { url: string }) => {
      const p = new Probe(`${ws(s)}/v1/rooms/listen`, { headers: { authorization: `Bearer ${API_KEY}` } });
      await p.opened;
      p.sendJson({ type: 'join', room: 'slow' });
      return Object.assign(p, { subscriberId: (await p.nextText('joined')).subscriberId as string });
    };
    const [fastA, fastB, slow] = [await join(a), await join(b), await join(b)];
    const slowListener = [...b.app.tokstream.rooms.listeners].find((l) => l.id === slow.subscriberId)!;
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause(); // stops reading
    const slot = await a.app.tokstream.rooms.relay.reservePublisher('slow', 16);
    slot.start({ streamId: 's-nodes', model: 'default', modelVersion: '1', modelSampleRate: 24000, hopLength: 320, frameRate: 75, codebooks: 8, codebookSize: 1024, codeBytes: 2, chunkFrames: 100, decoderLookaheadFrames: 1 });
    await fastB.nextText('publisher_joined');
    const frames = 100; // 1.6 KB packets
    const codes = new Int32Array(8 * frames).map((_, i) => i % 1024);
    const t0 = performance.now();
    let count = 0;
    while (!slowListener.failure && performance.now() - t0 < 20_000) {
      slot.packet(encodeTokenPacket({ numCodebooks: 8, numFrames: frames, codes }, count, count * frames, 2));
      count++;
      await until(() => fastA.binaries().length === count && fastB.binaries().length === count); // the healthy listeners keep up
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(slowListener.failure).toBe('slow_consumer'); // closed by B's policy for that listener alone
    expect(slowListener.dropped).toBeGreaterThan(0);
    expect(slowListener.sent + slowListener.dropped).toBe(count);
    slot.end();
    await fastA.nextText('publisher_left');
    await fastB.nextText('publisher_left');
    const firstFrames = (p: Probe) => p.binaries().map((f) => decodeRoomPacket(f).packet.firstFrame);
    for (const p of [fastA, fastB]) expect(firstFrames(p)).toEqual(Array.from({ length: count }, (_, i) => i * frames));
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await slow.closed).toBe(4009);
    const delivered = firstFrames(slow);
    expect(delivered.length).toBe(slowListener.sent);
    expect(delivered.every((f, i) => i === 0 || f > delivered[i - 1])).toBe(true);
    fastA.ws.close();
    fastB.ws.close();
  });

  it('a node whose Redis subscription is cut catches up: the end it missed still reaches its listeners', async () => {
    const sub = await listen(b, 'cut');
    const l = collect(sub);
    const slot = await a.app.tokstream.rooms.relay.reservePublisher('cut', 16);
    const info = slot.start({ streamId: 's-cut', model: 'default', modelVersion: '1', modelSampleRate: 24000, hopLength: 320, frameRate: 75, codebooks: 1, codebookSize: 1024, codeBytes: 2, chunkFrames: 1, decoderLookaheadFrames: 1 });
    await until(() => l.events.some((e) => e.type === 'publisher_joined'));
    await db.client('KILL', 'TYPE', 'pubsub'); // B (and A) lose their subscriptions
    slot.packet(encodeTokenPacket({ numCodebooks: 1, numFrames: 1, codes: new Int32Array(1) }, 0, 0, 2));
    slot.end(); // announced while B is not subscribed
    await until(() => l.events.some((e) => e.type === 'publisher_left'), 10_000, 'publisher_left after the reconnect');
    expect(l.events.at(-1)).toMatchObject({ type: 'publisher_left', publisher: info.publisher });
    sub.close();
    await l.done;
  });

  it('holds one listener limit for the cluster, and one set of room keys', async () => {
    // maxRoomListeners is 4 on each node: 4 in all, wherever they join
    await until(() => a.app.tokstream.rooms.listeners.size + b.app.tokstream.rooms.listeners.size === 0, 5000, 'earlier listeners to leave');
    const held = [await listen(a, 'full'), await listen(b, 'full'), await listen(a, 'full'), await listen(b, 'full')];
    for (const s of [a, b]) await expect(listen(s, 'full')).rejects.toMatchObject({ code: 'too_many_streams' });
    held.pop()!.close();
    await until(() => b.app.tokstream.rooms.listeners.size === 1, 5000, 'listener to leave');
    const again = await listen(a, 'full');
    again.close();
    for (const s of held) s.close();
    await until(() => a.app.tokstream.rooms.listeners.size + b.app.tokstream.rooms.listeners.size === 0, 5000, 'listeners to leave');
    // the listen key configured on A only is good on B, for its room only
    const viaB = await listen(b, 'lobby', LISTEN_KEY);
    await expect(listen(b, 'other', LISTEN_KEY)).rejects.toMatchObject({ code: 'unauthorized' });
    viaB.close();
  });
});

function ensureBuilt(): void {
  const newest = Math.max(...['server', 'server/rooms'].flatMap((d) => readdirSync(join(ROOT, d)).filter((f) => f.endsWith('.ts')).map((f) => statSync(join(ROOT, d, f)).mtimeMs)));
  const built = join(ROOT, 'dist/server/rooms/redis-relay.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newest) spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
}

/** `tokstream serve` as its own process, on a free port; resolves once it listens. */
async function serveProcess(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  ensureBuilt();
  const child = spawn(process.execPath, [join(ROOT, 'bin/tokstream.js'), 'serve', '--port', '0', '--models-dir', defaultOnlyModelsDir(), '--threads', '1', '--no-demo', '--log-level', 'warn', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  await until(() => /listening on http:\/\/[\d.]+:\d+/.test(err) || child.exitCode !== null, 60_000, 'server process');
  const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(err);
  if (!m) throw new Error(`server process failed: ${err}`);
  return { child, url: m[1] };
}

describe('a node dies (kill -9)', () => {
  it('listeners elsewhere get publisher_left within 5 heartbeats; Redis keeps nothing of the dead node', async () => {
    const nodesBefore = await db.smembers('tokstream:rooms:nodes');
    const victim = await serveProcess(['--api-key', API_KEY, '--redis-url', redis.url, '--redis-heartbeat-ms', String(HEARTBEAT_MS), '--admission-max-queue-ms', '10000']);
    const dead = (await db.smembers('tokstream:rooms:nodes')).filter((n) => !nodesBefore.includes(n));
    expect(dead).toHaveLength(1);
    const pub = await openRoomPublisher({ url: `${ws(victim)}/v1/rooms/publish`, room: 'doomed', apiKey: API_KEY, WebSocket: WebSocket as never, sampleRate: 16000, codebooks: 2 });
    const { packets: own, done: echo } = ownPackets(pub);
    echo.catch(() => undefined); // the server is killed under it
    // speak in real time until the node is killed
    let speaking = true;
    const speaker = (async () => {
      for (let i = 0; speaking; i = (i + 3200) % (speech.length - 3200)) {
        pub.write(speech.subarray(i, i + 3200));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await until(() => own.length >= 3, 20_000, 'first packets');
    const subs: RoomSubscription[] = [];
    const joinedAt: number[] = []; // read at once: the client advances it as packets arrive
    for (let i = 0; i < 2; i++) {
      subs.push(await listen(b, 'doomed'));
      joinedAt.push(subs[i].joined.publishers[0].nextFrame);
    }
    const got = subs.map(collect);
    await until(() => got.every((g) => packets(g.events).length >= 3), 20_000, 'packets relayed to B');
    const killedAt = performance.now();
    victim.child.kill('SIGKILL');
    speaking = false;
    await until(() => got.every((g) => g.events.some((e) => e.type === 'publisher_left')), 10_000, 'publisher_left on B');
    const endedAfterMs = performance.now() - killedAt;
    console.log(`publisher_left on the other node ${endedAfterMs.toFixed(0)} ms after kill -9 (bound: 5 x ${HEARTBEAT_MS} ms)`);
    expect(endedAfterMs).toBeLessThanOrEqual(END_BOUND_MS);
    for (const [i, g] of got.entries()) {
      const p = packets(g.events);
      expect(joinedAt[i]).toBe(p[0].firstFrame);
      expect(p.every((x, j) => j === 0 || (x.seq === p[j - 1].seq + 1 && x.firstFrame === p[j - 1].firstFrame + p[j - 1].tokens.numFrames))).toBe(true);
      // the end of its timeline: where the last relayed packet ended
      expect(g.events.at(-1)).toEqual({ type: 'publisher_left', publisher: pub.ready.publisher, frames: p.at(-1)!.firstFrame + p.at(-1)!.tokens.numFrames });
    }
    await speaker;
    for (const s of subs) s.close();
    await Promise.all(got.map((g) => g.done));

    // after the TTL (3 heartbeats) and one more heartbeat of the survivors, nothing names the dead node
    await new Promise((r) => setTimeout(r, 4 * HEARTBEAT_MS));
    const keys = await db.keys('*');
    expect(keys.filter((k) => k.includes(dead[0]))).toEqual([]);
    expect(await db.smembers('tokstream:rooms:nodes')).not.toContain(dead[0]);
    expect(await db.hkeys('tokstream:rooms:listeners')).not.toContain(dead[0]);
    for (const k of keys.filter((x) => x.endsWith(':pubs'))) expect(Object.values(await db.hgetall(k)).join()).not.toContain(dead[0]);
    for (const k of keys) expect(await db.pttl(k), k).not.toBe(-1); // every key has a TTL (-2: expired since KEYS)

    // once every node is gone, the keys expire: Redis is empty
    await a.close();
    await b.close();
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS + 200));
    expect(await db.keys('*')).toEqual([]);
  });
});
