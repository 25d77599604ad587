import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecModel } from '../../codec/model.js';
import { concatTokens } from '../../codec/stream-encoder.js';
import { TokstreamError, openDecodeStream, openEncodeStream, type WebSocketCtor } from '../../clients/ts/index.js';
import { DEFAULT_MODEL_DIR, readPcm, speechWav } from '../helpers/fixtures.js';
import { encodeWithStreamPlan, startTestServer } from '../helpers/stream-harness.js';

const KEY = 'client-test-key-42';
const WS = WebSocket as unknown as WebSocketCtor;
let server: Awaited<ReturnType<typeof startTestServer>>;
let model: CodecModel;

beforeAll(async () => {
  server = await startTestServer({ noAuth: false, apiKeys: [KEY], maxAheadSec: 60, maxBufferedSec: 60, admissionMaxQueueMs: 60_000 });
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
});
afterAll(async () => {
  await server?.close();
  await model?.release();
});

describe('TypeScript client', () => {
  it('encodes then decodes through both directions, equal to offline', async () => {
    // on the 16-bit grid, so the s16le wire format carries it losslessly
    const pcm = readPcm(speechWav('The client speaks the documented protocol only.'), 16000).map((v) => Math.round(v * 32768) / 32768);
    const enc = await openEncodeStream({ url: server.wsUrl, apiKey: KEY, WebSocket: WS, sampleRate: 16000, format: 's16le', chunkMs: 100 });
    expect(enc.ready).toMatchObject({ sampleRate: 16000, chunkFrames: 8, codebooks: 8 });
    const dec = await openDecodeStream({ url: server.wsUrl, apiKey: KEY, keyVia: 'query', WebSocket: WS, format: 'f32le' });
    const collected = (async () => {
      const blocks = [];
      for await (const packet of enc) {
        blocks.push(packet.tokens);
        dec.writePacket(packet); // pipe tokens straight into the decoder, as a speech LM relay would
      }
      return concatTokens(blocks);
    })();
    const audio = (async () => {
      const parts: Float32Array[] = [];
      for await (const p of dec) parts.push(p.pcm);
      return parts;
    })();
    for (let i = 0; i < pcm.length; i += 1234) enc.write(pcm.subarray(i, i + 1234));
    const marker = await enc.flush('half');
    expect(marker.marker).toBe('half');
    const closed = await enc.close();
    const tokens = await collected;
    // 100 ms = 7.5 frames: the stream cuts a chunk at every 100 ms of audio (7 or 8 frames)
    expect(enc.ready.chunkMs).toBe(100);
    const offline = await encodeWithStreamPlan(model, pcm, 16000, (enc.ready.chunkMs * enc.ready.frameRate) / 1000);
    expect(tokens.codes).toEqual(offline.codes);
    expect(closed.frames).toBe(offline.numFrames);
    expect(enc.framesReceived).toBe(offline.numFrames);
    expect(enc.closeCode).toBe(1000);

    await dec.close();
    const parts = await audio;
    const decoded = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    parts.reduce((o, p) => (decoded.set(p, o), o + p.length), 0);
    const reference = await model.decode(offline);
    expect(decoded.length).toBe(reference.length);
    let worst = 0;
    for (let i = 0; i < decoded.length; i++) worst = Math.max(worst, Math.abs(decoded[i] - reference[i]));
    expect(worst).toBeLessThan(1e-4);
  });

  it('surfaces refusals and drops as TokstreamError with the close code, without reconnecting', async () => {
    const refused = await openEncodeStream({ url: server.wsUrl, apiKey: 'wrong-key-12345', WebSocket: WS }).catch((e) => e);
    expect(refused).toBeInstanceOf(TokstreamError);
    expect(refused).toMatchObject({ code: 'unauthorized', fatal: true });

    const nonFatal: string[] = [];
    const dec = await openDecodeStream({ url: server.wsUrl, apiKey: KEY, keyVia: 'protocol', WebSocket: WS, codebooks: 2, onError: (e) => nonFatal.push(e.code) });
    dec.write({ numCodebooks: 2, numFrames: 1, codes: new Int32Array([5, 4096]) }); // outside the codebook: refused, stream goes on
    const iter = (async () => {
      for await (const _ of dec);
    })();
    await new Promise((r) => setTimeout(r, 200));
    expect(nonFatal).toEqual(['invalid_tokens']);
    // the server goes away mid-stream: the iterator ends with the close code
    const other = await startTestServer({ maxAheadSec: 60 });
    const enc = await openEncodeStream({ url: other.wsUrl, WebSocket: WS });
    const it2 = (async () => {
      for await (const _ of enc);
    })();
    const ended = expect(it2).rejects.toMatchObject({ code: 'shutting_down', closeCode: 1001 });
    await other.close();
    await ended;
    expect(() => enc.write(new Float32Array(10))).toThrow(TokstreamError);
    dec.abort();
    await iter.catch(() => undefined);
  });
});
