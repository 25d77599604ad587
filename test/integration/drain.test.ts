import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openEncodeStream, TokstreamError, type EncodeStream } from '../../clients/ts/client.js';
import { CLOSE_DRAINING } from '../../protocol/errors.js';
import type { TokenPacket } from '../../protocol/stream.js';
import { joinRoom, openRoomPublisher, type RoomEvent } from '../../clients/ts/room-client.js';
import { readTok } from '../../codec/tokfile.js';
import { convertAudio, readPcm, speechWav } from '../helpers/fixtures.js';
import { readyz, spawnServer, until, type ServerProcess } from '../helpers/server-process.js';
import { Probe } from '../helpers/stream-harness.js';

// Graceful drain of a real `tokstream serve` process (docs/deploy.md, "Draining"): SIGTERM while
// streams, a room listener and an HTTP upload are running.
const RATE = 24000;
const speech = readPcm(speechWav('Draining lets every stream that is running finish before the server goes away.'), RATE);

let servers: ServerProcess[] = [];
afterEach(() => {
  for (const s of servers) s.child.kill('SIGKILL');
  servers = [];
});

async function start(args: string[]): Promise<ServerProcess> {
  const s = await spawnServer(['--admission-max-queue-ms', '5000', ...args]);
  servers.push(s);
  return s;
}

/** Reads a stream's packets until it ends; `ended` says how. */
function drainPackets(s: EncodeStream): { packets: TokenPacket[]; ended: Promise<TokstreamError | undefined> } {
  const packets: TokenPacket[] = [];
  const ended = (async () => {
    try {
      for await (const p of s) packets.push(p);
      return undefined;
    } catch (e) {
      return e as TokstreamError;
    }
  })();
  return { packets, ended };
}

/** POSTs `body` to /v1/encode in two parts; the second part is sent when `second` resolves. */
function slowUpload(url: string, body: Buffer, second: Promise<void>): { started: Promise<void>; done: Promise<{ status: number; body: Buffer }> } {
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const done = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const req = request(`${url}/v1/encode`, { method: 'POST', headers: { 'content-type': 'audio/wav', 'content-length': body.length } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const half = body.length >> 1;
    req.write(body.subarray(0, half), () => started());
    void second.then(() => req.end(body.subarray(half)));
  });
  done.catch(() => undefined); // awaited by the test; a failed test must not leave it unhandled
  return { started: startedP, done };
}

describe('drain on SIGTERM (real server process)', () => {
  it('lets running streams and HTTP jobs finish, refuses new ones with `draining`, exits 0', async () => {
    const server = await start(['--drain-timeout-ms', '60000']);
    const opts = { url: server.wsUrl, WebSocket: WebSocket as never, sampleRate: RATE, chunkMs: 80 };
    const streams = [await openEncodeStream(opts), await openEncodeStream(opts)];
    const readers = streams.map(drainPackets);
    const half = Math.floor(speech.length / 2);
    for (const s of streams) s.write(speech.subarray(0, half));
    const roomUrl = server.url.replace('http', 'ws');
    const listener = await joinRoom({ url: `${roomUrl}/v1/rooms/listen`, room: 'lobby', WebSocket: WebSocket as never });
    const roomEvents: RoomEvent[] = [];
    const listenerDone = (async () => {
      try {
        for await (const e of listener) roomEvents.push(e);
      } catch (e) {
        return e as TokstreamError;
      }
      return undefined;
    })();
    const unstarted = new Probe(server.wsUrl); // connected, no `start` yet: holds no stream, so it is refused too
    await unstarted.opened;
    let releaseUpload!: () => void;
    const wav = readFileSync(convertAudio(speechWav('An upload that is still arriving when the drain begins.'), 'wav', 16000, 1));
    const upload = slowUpload(server.url, wav, new Promise((r) => (releaseUpload = r)));
    await upload.started;
    await until(async () => (await readyz(server.url)).body.pending?.httpJobs === 1, 10_000, 'the upload to hold a job slot');
    // the half written at once saturates the model for a moment (queue wait); once it is processed the node is ready
    await until(async () => (await readyz(server.url)).status === 200, 20_000, 'the node to be ready');

    server.child.kill('SIGTERM');
    await until(() => streams.every((s) => s.draining !== undefined), 10_000, 'the draining notice');
    for (const s of streams) expect(s.draining!.closeInMs).toBeGreaterThan(50_000);
    expect(await unstarted.closed).toBe(CLOSE_DRAINING);
    expect(unstarted.texts()).toContainEqual(expect.objectContaining({ type: 'error', code: 'draining', fatal: true }));

    // not ready (the balancer's signal), still alive
    const ready = await readyz(server.url);
    expect(ready.status).toBe(503);
    expect(ready.body.reasons.map((r: { code: string }) => r.code)).toContain('draining');
    expect(ready.body.pending).toMatchObject({ streams: 2, httpJobs: 1 });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    // new streams, publishers, room joins and HTTP jobs are refused with the documented codes
    const refusal = await openEncodeStream(opts).then(() => undefined, (e: TokstreamError) => e);
    expect(refusal).toBeInstanceOf(TokstreamError);
    expect(refusal!.code).toBe('draining');
    expect(refusal!.retryElsewhere).toBe(true);
    const raw = new Probe(server.wsUrl);
    expect(await raw.closed).toBe(CLOSE_DRAINING);
    const pubRefusal = await openRoomPublisher({ ...opts, url: `${roomUrl}/v1/rooms/publish`, room: 'lobby' }).then(() => undefined, (e: TokstreamError) => e);
    expect(pubRefusal?.code).toBe('draining');
    const joinRefusal = await joinRoom({ url: `${roomUrl}/v1/rooms/listen`, room: 'lobby', WebSocket: WebSocket as never }).then(() => undefined, (e: TokstreamError) => e);
    expect(joinRefusal?.code).toBe('draining');
    const job = await fetch(`${server.url}/v1/encode`, { method: 'POST', body: wav });
    expect(job.status).toBe(503);
    expect(job.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await job.json()) as { error: { code: string } }).error.code).toBe('draining');
    await until(() => roomEvents.some((e) => e.type === 'draining'), 10_000, 'the listener\'s draining event');

    // the running streams and the upload go on to their normal end
    for (const s of streams) s.write(speech.subarray(half));
    const closed = await Promise.all(streams.map((s) => s.close()));
    releaseUpload();
    const answer = await upload.done;
    expect(answer.status).toBe(200);
    const tok = readTok(new Uint8Array(answer.body));
    expect(tok.complete).toBe(true);
    expect(tok.tokens.numFrames).toBeGreaterThan(100);
    for (const [i, r] of readers.entries()) {
      expect(await r.ended).toBeUndefined();
      const frames = r.packets.reduce((n, p) => n + p.tokens.numFrames, 0);
      expect(frames).toBe(closed[i].frames);
      expect(closed[i].samples).toBe(speech.length);
      expect(closed[i].frames).toBe(Math.ceil(speech.length / 320));
      r.packets.forEach((p, k) => expect(p.seq).toBe(k));
    }

    // nothing left to wait for: the server exits 0; the listener (not waited for) is closed with it
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).toMatch(/drained in \d+ ms/);
    expect((await listenerDone)?.closeCode).toBe(1001);
  });

  it('closes streams still running at the deadline with `shutting_down` (1001) and exits 0', async () => {
    const server = await start(['--drain-timeout-ms', '1500']);
    const stream = await openEncodeStream({ url: server.wsUrl, WebSocket: WebSocket as never, sampleRate: RATE });
    const reader = drainPackets(stream);
    stream.write(speech.subarray(0, RATE));
    await until(() => reader.packets.length > 0, 10_000, 'the first packets');
    const t0 = Date.now();
    server.child.kill('SIGTERM');
    const err = await reader.ended;
    const waited = Date.now() - t0;
    expect(err?.code).toBe('shutting_down');
    expect(err?.closeCode).toBe(1001);
    expect(stream.draining?.closeInMs).toBeGreaterThan(1000);
    expect(waited).toBeGreaterThanOrEqual(1400);
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).toMatch(/drain deadline \(1500 ms\) reached/);
  });
});
