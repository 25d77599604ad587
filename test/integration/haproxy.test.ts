import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openEncodeStream, type EncodeStream } from '../../clients/ts/client.js';
import { readPcm, speechWav } from '../helpers/fixtures.js';
import { freePort, readyz, spawnServer, until, type ServerProcess } from '../helpers/server-process.js';
import { ROOT } from '../helpers/prep.js';

// The deployment topology of deploy/ with real processes on loopback: haproxy, run with
// deploy/haproxy/haproxy.cfg itself (addresses from the environment), in front of two real
// `tokstream serve` processes.
const CFG = join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg');
const RATE = 24000;
const audio = readPcm(speechWav('Streams through the balancer.'), RATE).subarray(0, RATE / 2);

let nodes: ServerProcess[] = [];
let haproxy: ChildProcess | undefined;
let haproxyLog = '';
let lbUrl = '';
let statsUrl = '';
const open: EncodeStream[] = [];

beforeAll(async () => {
  nodes = await Promise.all([0, 1].map(() => spawnServer(['--admission-max-queue-ms', '5000', '--ready-max-queue-ms', '2000', '--drain-timeout-ms', '60000'])));
  const [lbPort, statsPort] = [await freePort(), await freePort()];
  lbUrl = `http://127.0.0.1:${lbPort}`;
  statsUrl = `http://127.0.0.1:${statsPort}/stats;csv`;
  const env = {
    ...process.env,
    TOKSTREAM_LB_BIND: `127.0.0.1:${lbPort}`,
    TOKSTREAM_LB_STATS: `127.0.0.1:${statsPort}`,
    TOKSTREAM_NODE_1: new URL(nodes[0].url).host,
    TOKSTREAM_NODE_2: new URL(nodes[1].url).host,
  };
  haproxy = spawn('haproxy', ['-db', '-f', CFG], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.on('data', (d) => (haproxyLog += d));
  haproxy.stderr!.on('data', (d) => (haproxyLog += d));
  await until(async () => {
    const s = await serverStates().catch(() => undefined);
    return s?.node1 === 'UP' && s?.node2 === 'UP';
  }, 20_000, 'haproxy to see both servers UP').catch((e: Error) => {
    throw new Error(`${e.message}\nhaproxy: ${haproxyLog}`);
  });
});

afterAll(() => {
  for (const s of open) s.abort();
  haproxy?.kill('SIGTERM');
  for (const n of nodes) n.child.kill('SIGKILL');
});

/** Health state of each backend server as HAProxy sees it (UP, DOWN, UP 1/2, ...). */
async function serverStates(): Promise<Record<string, string>> {
  const csv = await (await fetch(statsUrl)).text();
  const [header, ...rows] = csv.trim().split('\n');
  const cols = header.replace(/^# /, '').split(',');
  const [px, sv, status] = ['pxname', 'svname', 'status'].map((c) => cols.indexOf(c));
  return Object.fromEntries(rows.map((r) => r.split(',')).filter((r) => r[px] === 'tokstream').map((r) => [r[sv], r[status]]));
}

async function streamsOn(node: ServerProcess): Promise<number> {
  return (await readyz(node.url)).body.streams as number;
}

async function startedTotal(node: ServerProcess): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return [...text.matchAll(/^tokstream_streams_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

/** Opens an encode stream through the balancer and checks that tokens come back through it. */
async function streamViaBalancer(): Promise<EncodeStream> {
  const s = await openEncodeStream({ url: `${lbUrl.replace('http', 'ws')}/v1/stream`, WebSocket: WebSocket as never, sampleRate: RATE });
  open.push(s);
  s.write(audio);
  await s.flush();
  return s;
}

describe('tokstream behind HAProxy (deploy/haproxy/haproxy.cfg, real processes)', () => {
  it('spreads streams across both servers and serves the HTTP API through the balancer', async () => {
    const streams = [];
    for (let i = 0; i < 6; i++) streams.push(await streamViaBalancer());
    const counts = await Promise.all(nodes.map(streamsOn));
    expect(counts[0] + counts[1]).toBe(6);
    expect(Math.abs(counts[0] - counts[1])).toBeLessThanOrEqual(1); // leastconn
    const models = await fetch(`${lbUrl}/v1/models`);
    expect(models.status).toBe(200);
  });

  it('sends no new streams to a draining server; its running streams finish there', async () => {
    const [draining, other] = nodes;
    const runningThere = await streamsOn(draining);
    expect(runningThere).toBeGreaterThan(0);
    const startedThere = await startedTotal(draining);
    draining.child.kill('SIGTERM');
    await until(async () => (await serverStates()).node1 === 'DOWN', 10_000, 'haproxy to take the draining server out');
    expect((await serverStates()).node2).toBe('UP');

    const before = await streamsOn(other);
    for (let i = 0; i < 4; i++) await streamViaBalancer(); // none refused: they all went to the other server
    expect(await streamsOn(other)).toBe(before + 4);
    expect(await startedTotal(draining)).toBe(startedThere);
    expect(await streamsOn(draining)).toBe(runningThere);

    // the streams on the draining server got the notice, still work, and close normally
    const notified = open.filter((s) => s.draining !== undefined);
    expect(notified).toHaveLength(runningThere);
    for (const s of notified) {
      s.write(audio);
      const closed = await s.close();
      expect(closed.samples).toBe(2 * audio.length);
    }
    expect(await draining.exited).toEqual({ code: 0, signal: null });
    expect(haproxyLog).not.toMatch(/ALERT/);
  });
});
