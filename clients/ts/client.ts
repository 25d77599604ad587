/**
 * Typed client for tokstream streams (docs/protocol.md), for browsers and Node.
 *
 *   const enc = await openEncodeStream({ url: 'ws://127.0.0.1:8080/v1/stream', apiKey, WebSocket, sampleRate: 16000 });
 *   enc.write(float32Samples);                     // any size, any time
 *   for await (const packet of enc) use(packet);   // token packets as they become final
 *   await enc.close();                             // flushes, resolves with the totals
 *
 * In Node 20 (no global WebSocket) pass `WebSocket` from the `ws` package. The client never
 * reconnects by itself: a dropped stream ends its iterator with a TokstreamError carrying the
 * close code, and `framesReceived` / `samplesReceived` say where to resume (protocol §7).
 */
import {
  KIND_AUDIO_OUT, KIND_TOKENS, PROTOCOL_VERSION, decodeAudioOut, decodeTokenPacket, encodeAudioIn, encodeTokenPacket, type AudioPacket,
  type ClosedMessage, type Direction, type DrainingMessage, type FlushedMessage, type ReadyMessage, type SampleFormat, type ServerMessage, type TokenPacket, type Tokens,
} from '../../protocol/stream.js';
import {
  Inbox, TokstreamError, openSocket, reportServerError, sendJson, startKeepalive, type SocketOptions, type WebSocketLike,
} from './socket.js';

export { TokstreamError, type WebSocketCtor, type WebSocketLike } from './socket.js';

export interface StreamOptions extends SocketOptions {
  /** ws(s)://host:port/v1/stream */
  url: string;
  model?: string;
  /** encode: rate of the PCM written; decode: rate of the PCM wanted. Default: the model's. */
  sampleRate?: number;
  format?: SampleFormat;
  codebooks?: number;
  chunkMs?: number;
  /** Sends a keepalive this often while the stream is open (0 = never). Default 5000 ms. */
  keepaliveMs?: number;
  /** Called for non-fatal errors (a refused message); fatal ones end the iterator. */
  onError?: (e: TokstreamError) => void;
  /** The server began to drain: the stream runs on for up to `closeInMs`; open the next one elsewhere. */
  onDraining?: (m: DrainingMessage) => void;
  /** Extra `start` fields for protocol extensions (rooms: room, label, epochMs; see room-client.ts). */
  startExtra?: Record<string, unknown>;
}

const OPEN = 1;

/** Shared machinery of both directions: connection, control messages, the packet queue. */
abstract class Stream<P> implements AsyncIterable<P> {
  ready!: ReadyMessage;
  private readonly inbox = new Inbox<P>();
  private readonly flushes = new Map<string | number, { resolve: (m: FlushedMessage) => void; reject: (e: Error) => void }>();
  private closing: { resolve: (m: ClosedMessage) => void; reject: (e: Error) => void; promise: Promise<ClosedMessage> } | undefined;
  private keepalive: ReturnType<typeof setInterval> | undefined;
  private flushCounter = 0;
  /** Close code once the socket closed. */
  closeCode: number | undefined;
  /** Set when the server said it is draining (protocol §5). */
  draining: DrainingMessage | undefined;

  protected constructor(protected readonly ws: WebSocketLike, protected readonly opts: StreamOptions) {}

  protected static async connect(opts: StreamOptions, direction: Direction): Promise<{ ws: WebSocketLike; ready: ReadyMessage; early: unknown[] }> {
    const start = { ...opts.startExtra, type: 'start', version: PROTOCOL_VERSION, direction, model: opts.model, sampleRate: opts.sampleRate, format: opts.format, codebooks: opts.codebooks, chunkMs: opts.chunkMs };
    const { ws, answer, early } = await openSocket<ReadyMessage>(opts, start, 'ready');
    return { ws, ready: answer, early };
  }

  protected init(ready: ReadyMessage): void {
    this.ready = ready;
    this.ws.onmessage = (ev) => this.onMessage(ev.data);
    this.ws.onclose = (ev) => this.onClose(ev.code, ev.reason);
    this.keepalive = startKeepalive(this.ws, this.opts.keepaliveMs);
  }

  /** Bytes written but not yet handed to the network (browser flow control). */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Resolves once everything written before it has been processed and its packets received. */
  flush(marker: string | number = `flush-${++this.flushCounter}`): Promise<FlushedMessage> {
    return new Promise((resolve, reject) => {
      const { failure, ended } = this.inbox;
      if (failure || ended) return reject(failure ?? new TokstreamError('closed', 'stream is closed', true));
      this.flushes.set(marker, { resolve, reject });
      this.sendJson({ type: 'flush', marker });
    });
  }

  /** Ends the input; resolves with the server's totals once every packet has arrived. */
  close(): Promise<ClosedMessage> {
    if (!this.closing) {
      let resolve!: (m: ClosedMessage) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<ClosedMessage>((res, rej) => ((resolve = res), (reject = rej)));
      this.closing = { resolve, reject, promise };
      if (this.inbox.failure) reject(this.inbox.failure);
      else this.sendJson({ type: 'close' });
    }
    return this.closing.promise;
  }

  /** Drops the connection at once (no flush). */
  abort(): void {
    this.ws.close(1000, 'client abort');
  }

  [Symbol.asyncIterator](): AsyncIterator<P> {
    return this.inbox[Symbol.asyncIterator]();
  }

  protected abstract onBinary(bytes: Uint8Array): void;

  protected push(p: P): void {
    this.inbox.push(p);
  }

  protected sendJson(m: object): void {
    sendJson(this.ws, m);
  }

  protected send(bytes: Uint8Array): void {
    if (this.inbox.failure) throw this.inbox.failure;
    if (this.inbox.ended || this.ws.readyState !== OPEN) throw new TokstreamError('closed', 'stream is closed', true, this.closeCode);
    this.ws.send(bytes);
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') return this.onBinary(new Uint8Array(data as ArrayBuffer));
    const m = JSON.parse(data) as ServerMessage;
    switch (m.type) {
      case 'flushed': {
        this.flushes.get(m.marker)?.resolve(m);
        this.flushes.delete(m.marker);
        break;
      }
      case 'closed':
        this.closing?.resolve(m);
        break;
      case 'error':
        reportServerError(m, this.inbox, this.opts.onError);
        break;
      case 'draining':
        this.draining = m;
        this.opts.onDraining?.(m);
        break;
    }
  }

  private onClose(code: number, reason: string): void {
    this.closeCode = code;
    clearInterval(this.keepalive);
    const failure = this.inbox.closed(code, reason);
    const err = failure ?? new TokstreamError('closed', 'stream closed before the answer', true, code);
    for (const f of this.flushes.values()) f.reject(err);
    this.flushes.clear();
    this.closing?.reject(err); // no-op when already resolved
    this.inbox.end();
  }
}

/** Audio in, token packets out. */
export class EncodeStream extends Stream<TokenPacket> {
  /** Frames received so far: where a new stream would resume (protocol §7). */
  framesReceived = 0;

  static async open(opts: StreamOptions): Promise<EncodeStream> {
    const { ws, ready, early } = await Stream.connect(opts, 'encode');
    const s = new EncodeStream(ws, opts);
    s.init(ready);
    for (const d of early) s.onBinary(new Uint8Array(d as ArrayBuffer));
    return s;
  }

  /** Mono samples in [-1, 1] at `ready.sampleRate` (Int16Array: raw 16-bit samples). */
  write(pcm: Float32Array | Int16Array): void {
    const f = pcm instanceof Int16Array ? Float32Array.from(pcm, (v) => v / 32768) : pcm;
    const perFrame = Math.floor((this.ready.limits.maxFrameBytes - 4) / (this.ready.format === 's16le' ? 2 : 4));
    for (let i = 0; i < f.length; i += perFrame) this.send(encodeAudioIn(f.subarray(i, i + perFrame), this.ready.format));
  }

  protected onBinary(bytes: Uint8Array): void {
    if (bytes[0] !== KIND_TOKENS) return;
    const p = decodeTokenPacket(bytes, { codebooks: this.ready.codebooks, codeBytes: this.ready.codeBytes });
    this.framesReceived = p.firstFrame + p.tokens.numFrames;
    this.push(p);
  }
}

/** Token packets in, audio out. */
export class DecodeStream extends Stream<AudioPacket> {
  /** Frames written so far (the next packet's first frame). */
  framesSent = 0;
  private seq = 0;
  samplesReceived = 0;

  static async open(opts: StreamOptions): Promise<DecodeStream> {
    const { ws, ready, early } = await Stream.connect(opts, 'decode');
    const s = new DecodeStream(ws, opts);
    s.init(ready);
    for (const d of early) s.onBinary(new Uint8Array(d as ArrayBuffer));
    return s;
  }

  /** Codes of the next frames (codebook-major Tokens, K = ready.codebooks). */
  write(tokens: Tokens): void {
    const perPacket = Math.max(1, Math.floor((this.ready.limits.maxFrameBytes - 16) / (tokens.numCodebooks * this.ready.codeBytes)));
    for (let t = 0; t < tokens.numFrames; t += perPacket) {
      const n = Math.min(perPacket, tokens.numFrames - t);
      const part = n === tokens.numFrames ? tokens : sliceFrames(tokens, t, n);
      this.send(encodeTokenPacket(part, this.seq++, this.framesSent, this.ready.codeBytes));
      this.framesSent += n;
    }
  }

  /** Forwards a token packet received from an encode stream (re-numbered for this stream). */
  writePacket(packet: TokenPacket): void {
    this.write(packet.tokens);
  }

  protected onBinary(bytes: Uint8Array): void {
    if (bytes[0] !== KIND_AUDIO_OUT) return;
    const p = decodeAudioOut(bytes, this.ready.format);
    this.samplesReceived = p.firstSample + p.pcm.length;
    this.push(p);
  }
}

function sliceFrames(t: Tokens, from: number, count: number): Tokens {
  const codes = new Int32Array(t.numCodebooks * count);
  for (let k = 0; k < t.numCodebooks; k++) codes.set(t.codes.subarray(k * t.numFrames + from, k * t.numFrames + from + count), k * count);
  return { numCodebooks: t.numCodebooks, numFrames: count, codes };
}

export const openEncodeStream = (opts: StreamOptions) => EncodeStream.open(opts);
export const openDecodeStream = (opts: StreamOptions) => DecodeStream.open(opts);
