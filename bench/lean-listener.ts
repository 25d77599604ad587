/**
 * A lean room listener for load generation (bench:voice's token-only crowd): the documented
 * WebSocket join, then only each kind-16 frame's publisher, frame end and arrival time, stored in
 * typed arrays. It stands for listeners on other machines, so it spends as little of this
 * machine's CPU as it can: its own frame reader instead of a WebSocket library, no per-message
 * objects. Pings are answered (the server's slow-listener probes need the pongs).
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { PROTOCOL_V1 } from '../protocol/stream.js';
import { KIND_ROOM_TOKENS, ROOM_TOKENS_HEADER } from '../protocol/rooms.js';

/** Arrivals of kind-16 frames: publisher, the frame their packet ends at, when (epoch ms). */
export class Arrivals {
  count = 0;
  publishers = new Uint32Array(1024);
  ends = new Uint32Array(1024);
  at = new Float64Array(1024);

  add(publisher: number, end: number, at: number): void {
    if (this.count === this.at.length) this.grow();
    this.publishers[this.count] = publisher;
    this.ends[this.count] = end;
    this.at[this.count++] = at;
  }

  /** [frame end, arrival] of one publisher, in arrival order. */
  of(publisher: number): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.count; i++) if (this.publishers[i] === publisher) out.push([this.ends[i], this.at[i]]);
    return out;
  }

  private grow(): void {
    const n = this.at.length * 2;
    const [p, e, a] = [new Uint32Array(n), new Uint32Array(n), new Float64Array(n)];
    p.set(this.publishers);
    e.set(this.ends);
    a.set(this.at);
    [this.publishers, this.ends, this.at] = [p, e, a];
  }
}

const epoch = () => performance.timeOrigin + performance.now();

/** Client frames are masked (RFC 6455 §5.3); payloads here are small. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  if (payload.length > 125) throw new Error('lean listener: control payloads only');
  const mask = randomBytes(4);
  const out = Buffer.alloc(6 + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | payload.length;
  mask.copy(out, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i] ^ mask[i & 3];
  return out;
}

export interface LeanListener {
  arrivals: Arrivals;
  close(): void;
}

/**
 * Joins `room` at `url` (ws://host:port); resolves once `joined` arrives. `onError` gets the
 * message of any `error` the server sends later.
 */
export function joinLean(url: string, room: string, onError: (message: string) => void): Promise<LeanListener> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: hostname, port, path: '/v1/rooms/listen',
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Protocol': PROTOCOL_V1,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => reject(new Error(`lean listener: HTTP ${res.statusCode} instead of an upgrade`)));
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      socket.setNoDelay(true);
      const arrivals = new Arrivals();
      let joined = false;
      let buf = head;
      const onFrame = (opcode: number, payload: Buffer) => {
        if (opcode === 2) {
          if (payload[0] !== KIND_ROOM_TOKENS) return;
          // kind-16 header: publisher u32 at 4, then the kind-2 packet (first frame at +8, frame count at +12)
          const end = payload.readUInt32LE(ROOM_TOKENS_HEADER + 8) + payload.readUInt32LE(ROOM_TOKENS_HEADER + 12);
          arrivals.add(payload.readUInt32LE(4), end, epoch());
        } else if (opcode === 1) {
          const m = JSON.parse(payload.toString()) as { type: string; message?: string };
          if (m.type === 'joined' && !joined) {
            joined = true;
            resolve({ arrivals, close: () => socket.destroy() });
          } else if (m.type === 'error') {
            if (!joined) reject(new Error(m.message));
            else onError(m.message ?? 'error');
          }
        } else if (opcode === 9) socket.write(clientFrame(10, payload));
        else if (opcode === 8) socket.end();
      };
      socket.on('data', (chunk: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        let at = 0;
        for (;;) {
          if (buf.length - at < 2) break;
          const opcode = buf[at] & 0x0f;
          let len = buf[at + 1] & 0x7f;
          let header = 2;
          if (len === 126) {
            if (buf.length - at < 4) break;
            len = buf.readUInt16BE(at + 2);
            header = 4;
          } else if (len === 127) {
            if (buf.length - at < 10) break;
            len = Number(buf.readBigUInt64BE(at + 2));
            header = 10;
          }
          if (buf.length - at < header + len) break;
          onFrame(opcode, buf.subarray(at + header, at + header + len));
          at += header + len;
        }
        buf = at === buf.length ? Buffer.alloc(0) : buf.subarray(at);
      });
      socket.on('error', (e) => (joined ? onError(e.message) : reject(e)));
      socket.write(clientFrame(1, Buffer.from(JSON.stringify({ type: 'join', room }))));
    });
    req.end();
  });
}
