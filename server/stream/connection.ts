import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import type { ModelBatcher } from '../../codec/batcher.js';
import { CodecError } from '../../codec/pure/errors.js';
import { frameRate } from '../../codec/manifest.js';
import { DecodeSession, EncodeSession } from '../../codec/stream-session.js';
import type { TokenBlock } from '../../codec/pure/types.js';
import { ProtocolError } from '../../protocol/errors.js';
import { parseControlMessage, parseFlush, parseStart, type ControlMessage } from '../../protocol/parse.js';
import {
  KIND_AUDIO_IN, KIND_TOKENS, PROTOCOL_VERSION, codeBytesFor, decodeAudioIn, decodeTokenPacket, encodeAudioOut, encodeTokenPacket,
  type Direction, type ReadyMessage, type SampleFormat, type StartMessage,
} from '../../protocol/stream.js';
import type { ServerConfig } from '../config.js';
import type { Drain } from '../drain.js';
import type { ServerMetrics } from '../metrics.js';
import { drainingError, drainingNotice, toProtocolError } from './errors.js';
import { PeerSocket, reportCut } from './peer-socket.js';

export interface StreamContext {
  config: ServerConfig;
  batchers: Map<string, ModelBatcher>;
  defaultModel: string | undefined;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** Once it has begun, `start` is refused with `draining`. */
  drain?: Drain;
}

interface Started {
  direction: Direction;
  model: string;
  format: SampleFormat;
  sampleRate: number;
  codebooks: number;
  codeBytes: 2 | 4;
  codebookSize: number;
  modelRate: number;
  frameRate: number;
  startedAt: number;
  session: EncodeSession | DecodeSession;
}

/**
 * What the rooms endpoint (server/rooms/) sees of an encode stream it publishes: the `start`
 * message (it parses its own fields and may refuse it by throwing a ProtocolError), the `ready`
 * (returns fields added to it), every token packet as sent, and the end. Plain /v1/stream
 * connections have no tap.
 */
export interface StreamTap {
  /** May be asynchronous (rooms across nodes ask Redis for a publisher slot). */
  checkStart(m: ControlMessage): void | Promise<void>;
  started(ready: ReadyMessage): Record<string, unknown>;
  packet(bytes: Uint8Array): void;
  ended(): void;
}

/**
 * One WebSocket = one stream: parses control and binary frames, drives an Encode/DecodeSession,
 * enforces the per-stream limits (docs/protocol.md §5) and releases everything on any exit.
 */
export class StreamConnection {
  private state: 'waiting' | 'starting' | 'active' | 'closing' | 'closed' = 'waiting';
  private started: Started | undefined;
  private work: Promise<void> = Promise.resolve();
  private errorCount = 0;
  private packetsOut = 0;
  private readonly socket: PeerSocket;

  constructor(readonly id: string, private readonly ws: WebSocket, private readonly ctx: StreamContext, private readonly onGone: (c: StreamConnection) => void, private readonly tap?: StreamTap) {
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.onMessage(toBuffer(data), isBinary));
    ws.on('close', () => this.cleanup());
    ws.on('error', (e) => ctx.log.debug({ streamId: id, err: e.message }, 'websocket error'));
    this.socket = new PeerSocket(ws, ctx.config, (e) => this.fail(e), { onCut: reportCut(ctx.metrics.cut, ctx.log, { streamId: id }) });
  }

  /**
   * The server began to drain: a connection with no stream yet is refused (`draining`), a running
   * stream is told how long it may continue.
   */
  drainBegun(closeInMs: number): void {
    if (this.state === 'waiting') this.fail(drainingError());
    else if (this.state === 'active') this.sendJson(drainingNotice(closeInMs));
  }

  /** Ends the stream with a typed error (fatal ones close the socket). */
  fail(err: ProtocolError): void {
    if (this.state === 'closed') return;
    this.ctx.metrics.errors.inc({ code: err.code });
    this.sendJson({ type: 'error', code: err.code, message: err.message, fatal: err.fatal, ...err.extra });
    if (err.fatal) {
      this.ctx.log.info({ streamId: this.id, code: err.code, queuedBytes: this.ws.bufferedAmount }, `stream ended: ${err.message}`);
      this.closeSocket(err.closeCode ?? 4000, err.code);
    } else if (++this.errorCount >= this.ctx.config.maxProtocolErrors) {
      this.fail(new ProtocolError('too_many_errors', `${this.errorCount} refused messages`));
    }
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.socket.armIdle();
    // handled in arrival order; only `start` is asynchronous, so frames pipelined behind it wait for it
    this.work = this.work.then(() => this.handle(data, isBinary)).catch((e) => this.fail(toProtocolError(e)));
  }

  private async handle(data: Buffer, isBinary: boolean): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (isBinary) return this.handleBinary(data);
    const m = parseControlMessage(data, this.ctx.config.maxTextBytes);
    switch (m.type) {
      case 'start':
        if (this.state !== 'waiting') throw new ProtocolError('already_started', 'stream already started');
        return this.start(parseStart(m), m);
      case 'flush':
        return this.flush(m);
      case 'keepalive':
        return;
      case 'close':
        return this.close();
      default:
        throw new ProtocolError('unknown_type', `unknown message type ${JSON.stringify(m.type)}`);
    }
  }

  /** `raw` is the message as sent: a tap reads its own fields from it. */
  private async start(m: StartMessage, raw: ControlMessage): Promise<void> {
    const { config, batchers } = this.ctx;
    if (this.ctx.drain?.draining) throw drainingError();
    await this.tap?.checkStart(raw);
    if (this.state !== 'waiting') return this.tap?.ended(); // the socket went away while the room slot was being taken
    const modelName = m.model ?? this.ctx.defaultModel;
    if (modelName === undefined) throw new ProtocolError('bad_message', 'model must be a string');
    const batcher = batchers.get(modelName);
    if (!batcher) throw new ProtocolError('model_not_found', `no model "${modelName}" (have: ${[...batchers.keys()].join(', ') || 'none'})`);
    const man = batcher.manifest;
    const format = m.format ?? 's16le';
    const sampleRate = m.sampleRate ?? man.sampleRate;
    const codebooks = m.codebooks ?? man.numCodebooks;
    if (codebooks < 1 || codebooks > man.numCodebooks) {
      throw new ProtocolError('model_mismatch', `codebooks must be an integer in 1..${man.numCodebooks} for model "${man.name}"`);
    }
    const chunkMsAsked = m.chunkMs ?? config.defaultChunkMs;
    const fr = frameRate(man);
    const chunkMs = Math.min(config.maxChunkMs, Math.max(config.minChunkMs, chunkMsAsked));
    const exactFrames = (chunkMs / 1000) * fr;
    const chunkFrames = Math.max(1, Math.round(exactFrames));
    if (batcher.stats().realtimeWaitMs > config.admissionMaxQueueMs) {
      this.ctx.metrics.refused.inc({ reason: 'overloaded' });
      throw new ProtocolError('overloaded', `model "${man.name}" is saturated (queue wait above ${config.admissionMaxQueueMs} ms); try later`);
    }

    this.state = 'starting';
    const base = { streamId: this.id, chunkFrames, codebooks, onError: (e: CodecError) => this.sessionFailed(e) };
    let session: EncodeSession | DecodeSession;
    try {
      session =
        m.direction === 'encode'
          ? await EncodeSession.create(batcher, { ...base, chunkFrames: exactFrames, inputRate: sampleRate, onTokens: (b, first, waited) => this.sendTokens(b, first, waited) })
          : await DecodeSession.create(batcher, { ...base, outputRate: sampleRate, onPcm: (pcm, first, waited) => this.sendPcm(pcm, first, waited) });
    } catch (e) {
      if (this.state === 'starting') this.state = 'waiting'; // a refused start may be retried
      throw e;
    }
    if (this.state !== 'starting') {
      session.destroy(); // the socket went away while the session was being built
      return;
    }
    this.started = {
      direction: m.direction, model: man.name, format, sampleRate, codebooks, codeBytes: codeBytesFor(man.codebookSize),
      codebookSize: man.codebookSize, modelRate: man.sampleRate, frameRate: fr, startedAt: performance.now(), session,
    };
    this.state = 'active';
    this.ctx.metrics.activeStreams.inc({ model: man.name, direction: m.direction });
    this.ctx.metrics.streamsTotal.inc({ model: man.name, direction: m.direction });
    const ready: ReadyMessage = {
      type: 'ready', version: PROTOCOL_VERSION, streamId: this.id, model: man.name, modelVersion: man.version, direction: m.direction,
      sampleRate, format, modelSampleRate: man.sampleRate, hopLength: man.hopLength, frameRate: fr, codebooks,
      codebookSize: man.codebookSize, codeBytes: this.started.codeBytes, chunkFrames,
      chunkMs: ((session instanceof EncodeSession ? session.packetFrames : chunkFrames) / fr) * 1000,
      encoderLookaheadFrames: Math.ceil(man.encoder.lookahead / man.hopLength), decoderLookaheadFrames: man.decoder.lookahead,
      limits: {
        maxFrameBytes: config.maxFrameBytes, maxTextBytes: config.maxTextBytes, maxAheadSec: config.maxAheadSec, maxBufferedSec: config.maxBufferedSec,
        maxOutboundBytes: config.maxOutboundBytes, idleTimeoutMs: config.idleTimeoutMs, maxProtocolErrors: config.maxProtocolErrors,
      },
    };
    this.sendJson({ ...ready, ...this.tap?.started(ready) }); // rooms add their fields
    if (this.ctx.drain?.draining) this.sendJson(drainingNotice(this.ctx.drain.closeInMs)); // it began while the session was built
    this.ctx.log.info({ streamId: this.id, model: man.name, direction: m.direction, sampleRate, format, codebooks, chunkFrames }, 'stream started');
  }

  private handleBinary(data: Buffer): void {
    const s = this.started;
    if (!s || this.state !== 'active') throw new ProtocolError('not_started', 'binary frame before "start" was accepted');
    const { config } = this.ctx;
    if (data.length > config.maxFrameBytes) throw new ProtocolError('frame_too_large', `binary frame of ${data.length} bytes (limit ${config.maxFrameBytes})`);
    const kind = data[0];
    const elapsed = (performance.now() - s.startedAt) / 1000;
    if (s.session instanceof EncodeSession) {
      if (kind !== KIND_AUDIO_IN) throw new ProtocolError('bad_frame', `binary kind ${kind} in an encode stream (audio is kind ${KIND_AUDIO_IN})`);
      refuseReserved(data, 4);
      const pcm = decodeAudioIn(data, s.format);
      if (pcm.length === 0) return; // allowed, and nothing to do
      if ((s.session.samplesReceived + pcm.length) / s.sampleRate > elapsed + config.maxAheadSec) {
        throw new ProtocolError('too_fast', `audio more than ${config.maxAheadSec} s ahead of real time`);
      }
      s.session.push(pcm);
      if (s.session.pendingSamples / s.modelRate > config.maxBufferedSec) {
        throw new ProtocolError('buffer_full', `more than ${config.maxBufferedSec} s of audio waiting to be processed`);
      }
      return;
    }
    if (kind !== KIND_TOKENS) throw new ProtocolError('bad_frame', `binary kind ${kind} in a decode stream (tokens are kind ${KIND_TOKENS})`);
    const expectedFrame = s.session.framesReceived;
    let packet;
    try {
      refuseReserved(data, 2);
      packet = decodeTokenPacket(data, { codebooks: s.codebooks, codeBytes: s.codeBytes, codebookSize: s.codebookSize });
    } catch (e) {
      throw withExpected(toProtocolError(e), expectedFrame);
    }
    if (packet.firstFrame !== expectedFrame) {
      throw new ProtocolError('frame_gap', `packet starts at frame ${packet.firstFrame}, expected ${expectedFrame}`, { expectedFrame });
    }
    if ((expectedFrame + packet.tokens.numFrames) / s.frameRate > elapsed + config.maxAheadSec) {
      throw new ProtocolError('too_fast', `tokens more than ${config.maxAheadSec} s ahead of real time`);
    }
    if (packet.tokens.numFrames === 0) return; // allowed (F = 0), and nothing to do
    try {
      s.session.push(packet.tokens);
    } catch (e) {
      throw withExpected(toProtocolError(e), expectedFrame);
    }
    if (s.session.pendingFrames / s.frameRate > config.maxBufferedSec) {
      throw new ProtocolError('buffer_full', `more than ${config.maxBufferedSec} s of tokens waiting to be decoded`);
    }
  }

  private flush(m: ControlMessage): void {
    const s = this.started;
    if (!s || this.state !== 'active') throw new ProtocolError('not_started', '"flush" before "start" was accepted');
    const { marker } = parseFlush(m);
    const samples = this.samples(s);
    void s.session.flush().then(() => {
      if (this.state === 'closed' || s.session.destroyed) return;
      this.sendJson({ type: 'flushed', marker, frames: this.frames(s), samples: s.direction === 'encode' ? samples : this.samples(s) });
    });
  }

  private async close(): Promise<void> {
    const s = this.started;
    if (!s || this.state !== 'active') {
      this.closeSocket(1000, 'closed');
      return;
    }
    this.state = 'closing';
    await s.session.finish();
    if (s.session.destroyed) return;
    const durationSec = (performance.now() - s.startedAt) / 1000;
    this.sendJson({ type: 'closed', frames: this.frames(s), samples: this.samples(s), packets: this.packetsOut, durationSec });
    this.closeSocket(1000, 'closed');
  }

  private frames(s: Started): number {
    return s.session instanceof EncodeSession ? s.session.framesDelivered : s.session.framesDecoded;
  }

  private samples(s: Started): number {
    return s.session instanceof EncodeSession ? s.session.samplesReceived : s.session.samplesDelivered;
  }

  private sendTokens(block: TokenBlock, firstFrame: number, waitedMs: number): void {
    const s = this.started!;
    this.ctx.metrics.packetLatency.observe({ direction: 'encode' }, waitedMs / 1000);
    this.ctx.metrics.mediaSeconds.inc({ model: s.model, direction: 'encode' }, block.numFrames / s.frameRate);
    const packet = encodeTokenPacket(block, this.packetsOut++, firstFrame, s.codeBytes);
    this.tap?.packet(packet); // rooms: listeners first, they are the latency-critical path
    this.sendBinary(packet);
  }

  private sendPcm(pcm: Float32Array, firstSample: number, waitedMs: number): void {
    const s = this.started!;
    this.ctx.metrics.packetLatency.observe({ direction: 'decode' }, waitedMs / 1000);
    this.ctx.metrics.mediaSeconds.inc({ model: s.model, direction: 'decode' }, pcm.length / s.sampleRate);
    // large decoded runs (a flush or close after a burst) go out in frames a browser handles comfortably
    const step = Math.max(1, Math.floor(this.ctx.config.maxFrameBytes / (s.format === 's16le' ? 2 : 4)));
    for (let i = 0; i < pcm.length; i += step) {
      this.sendBinary(encodeAudioOut(pcm.subarray(i, i + step), s.format, this.packetsOut++, firstSample + i));
    }
  }

  private sendBinary(bytes: Uint8Array): void {
    if (!this.socket.open) return;
    this.ws.send(bytes, { binary: true });
    if (this.ws.bufferedAmount > this.ctx.config.maxOutboundBytes) {
      this.fail(new ProtocolError('slow_consumer', `client is not reading: ${this.ws.bufferedAmount} bytes queued (limit ${this.ctx.config.maxOutboundBytes})`));
    }
  }

  private sendJson(msg: object): void {
    this.socket.sendJson(msg);
  }

  private sessionFailed(e: CodecError): void {
    if (e.code === 'aborted') return;
    if (e.code === 'limit_exceeded') this.fail(new ProtocolError('overloaded', e.message));
    else {
      this.ctx.log.error({ streamId: this.id, err: e.message }, 'model run failed');
      this.fail(new ProtocolError('internal', e.message));
    }
  }

  closeSocket(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.started?.session.destroy();
    this.socket.close(code, reason);
  }

  /** Releases everything the stream holds; runs once, whatever ended it. */
  private cleanup(): void {
    if (this.state === 'closed') return;
    const s = this.started;
    if (s) this.ctx.metrics.activeStreams.dec({ model: s.model, direction: s.direction });
    this.state = 'closed';
    s?.session.destroy();
    this.socket.stop();
    this.tap?.ended();
    this.onGone(this);
  }
}

/** Reserved header bytes (after the kind byte, before `end`) must be 0, so that they can gain a meaning later. */
function refuseReserved(frame: Buffer, end: number): void {
  for (let i = 1; i < Math.min(end, frame.length); i++) {
    if (frame[i] !== 0) throw new ProtocolError('bad_frame', `reserved header byte ${i} is ${frame[i]}; it must be 0`);
  }
}

function withExpected(e: ProtocolError, expectedFrame: number): ProtocolError {
  return new ProtocolError(e.code, e.message, { ...e.extra, expectedFrame });
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
