import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamResampler } from '../../codec/resample.js';
import { decodeAudioOut, decodeTokenPacket, encodeAudioIn, encodeTokenPacket } from '../../protocol/stream.js';
import { Probe, startTestServer } from '../helpers/stream-harness.js';

let server: Awaited<ReturnType<typeof startTestServer>>;

beforeAll(async () => {
  server = await startTestServer({ maxAheadSec: 60, maxBufferedSec: 60, admissionMaxQueueMs: 60_000, maxFrameBytes: 8192, maxProtocolErrors: 1000 });
});
afterAll(async () => {
  await server?.close();
});

async function started(start: Record<string, unknown>): Promise<{ p: Probe; ready: Record<string, any> }> {
  const p = new Probe(server.wsUrl);
  await p.opened;
  p.sendJson({ type: 'start', ...start });
  return { p, ready: await p.nextText('ready') };
}

async function refusal(p: Probe, send: () => void): Promise<Record<string, any>> {
  send();
  return p.nextText('error');
}

const sine = (n: number, rate: number) => new Float32Array(n).map((_, i) => 0.4 * Math.sin((2 * Math.PI * 440 * i) / rate));

describe('sample rates up to 384 kHz (the documented range)', () => {
  it('the resampler above 192 kHz gives exactly what the same ratio gives at rates the library accepts', async () => {
    const x = sine(38_400, 384_000);
    const run = async (a: number, b: number) => {
      const r = await StreamResampler.create(a, b);
      return Float32Array.from([...r.push(x.subarray(0, 10_000)), ...r.push(x.subarray(10_000)), ...r.finish()]);
    };
    expect(await run(384_000, 24_000)).toEqual(await run(192_000, 12_000));
    expect(await run(24_000, 384_000)).toEqual(await run(12_000, 192_000));
  });

  for (const rate of [192_001, 384_000]) {
    it(`encode and decode streams at ${rate} Hz`, async () => {
      const enc = await started({ direction: 'encode', sampleRate: rate, format: 'f32le' });
      expect(enc.ready.sampleRate).toBe(rate);
      const n = Math.round(rate * 0.5);
      const pcm = sine(n, rate);
      for (let i = 0; i < n; i += 2000) enc.p.ws.send(encodeAudioIn(pcm.subarray(i, i + 2000), 'f32le'));
      enc.p.sendJson({ type: 'close' });
      const closed = await enc.p.nextText('closed');
      // model-rate length round(n · 24000 / rate), padded to whole frames
      expect(closed.frames).toBe(Math.ceil(Math.round((n * 24_000) / rate) / 320));
      expect(enc.p.texts().filter((t) => t.type === 'error')).toEqual([]);
      const tokens = enc.p.binaries().map((b) => decodeTokenPacket(b).tokens);

      const dec = await started({ direction: 'decode', sampleRate: rate, format: 'f32le' });
      let frame = 0;
      for (const t of tokens) {
        dec.p.ws.send(encodeTokenPacket(t, 0, frame, dec.ready.codeBytes));
        frame += t.numFrames;
      }
      dec.p.sendJson({ type: 'close' });
      const dclosed = await dec.p.nextText('closed');
      const out = dec.p.binaries().map((b) => decodeAudioOut(b, 'f32le').pcm.length).reduce((a, b) => a + b, 0);
      // frames · hop model samples, resampled: round(frames · hop · rate / modelRate)
      expect(out).toBe(Math.round((frame * 320 * rate) / 24_000));
      expect(dclosed).toMatchObject({ frames: frame, samples: out });
      expect(dec.p.texts().filter((t) => t.type === 'error')).toEqual([]);
    });
  }

  it('a rate outside 4000..384000 is refused with bad_message, non-fatal', async () => {
    const p = new Probe(server.wsUrl);
    await p.opened;
    for (const direction of ['encode', 'decode']) {
      const e = await refusal(p, () => p.sendJson({ type: 'start', direction, sampleRate: 384_001 }));
      expect(e).toMatchObject({ code: 'bad_message', fatal: false });
    }
    p.sendJson({ type: 'start', direction: 'encode', sampleRate: 384_000 });
    await p.nextText('ready');
    p.ws.close();
  });
});

describe('control messages: the documented verdicts', () => {
  it('type: missing or not a string -> bad_message, unknown string -> unknown_type; codebooks: non-integer -> bad_message, out of range -> model_mismatch; null = absent', async () => {
    const p = new Probe(server.wsUrl);
    await p.opened;
    expect(await refusal(p, () => p.sendJson({ direction: 'encode' }))).toMatchObject({ code: 'bad_message', fatal: false });
    expect(await refusal(p, () => p.sendJson({ type: 3 }))).toMatchObject({ code: 'bad_message' });
    expect(await refusal(p, () => p.sendJson({ type: 'subscribe' }))).toMatchObject({ code: 'unknown_type' });
    expect(await refusal(p, () => p.sendJson({ type: 'start', direction: 'encode', codebooks: 2.5 }))).toMatchObject({ code: 'bad_message' });
    expect(await refusal(p, () => p.sendJson({ type: 'start', direction: 'encode', codebooks: '4' }))).toMatchObject({ code: 'bad_message' });
    expect(await refusal(p, () => p.sendJson({ type: 'start', direction: 'encode', codebooks: 0 }))).toMatchObject({ code: 'model_mismatch' });
    expect(await refusal(p, () => p.sendJson({ type: 'start', direction: null }))).toMatchObject({ code: 'bad_message' });
    p.sendJson({ type: 'start', direction: 'encode', model: null, sampleRate: null, format: null, codebooks: null, chunkMs: null });
    expect(await p.nextText('ready')).toMatchObject({ model: 'default', sampleRate: 24_000, format: 's16le', codebooks: 8, chunkMs: 80 });
    expect(await refusal(p, () => p.sendJson({ type: 'flush', marker: null }))).toMatchObject({ code: 'bad_message' });
    p.ws.close();
  });

  it('ready.limits reports every limit of §5', async () => {
    const { p, ready } = await started({ direction: 'encode' });
    expect(ready.limits).toEqual({
      maxFrameBytes: 8192, maxTextBytes: 4096, maxAheadSec: 60, maxBufferedSec: 60, maxOutboundBytes: 4 * 1024 * 1024, idleTimeoutMs: 30_000, maxProtocolErrors: 1000,
    });
    p.ws.close();
  });

  it('invalid UTF-8 in a text frame closes with 1007; a frame over 4 x maxFrameBytes closes with 1009', async () => {
    const a = new Probe(server.wsUrl);
    await a.opened;
    a.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(await a.closed).toBe(1007);
    const b = new Probe(server.wsUrl);
    await b.opened;
    b.ws.send(new Uint8Array(4 * 8192 + 1));
    expect(await b.closed).toBe(1009);
  });
});

describe('binary frames: the documented verdicts', () => {
  it('encode: non-zero reserved bytes -> bad_frame; an empty audio frame and f32le samples outside [-1, 1] are accepted', async () => {
    const { p } = await started({ direction: 'encode', format: 'f32le' });
    const frame = encodeAudioIn(sine(1920, 24_000), 'f32le');
    frame[2] = 1;
    expect(await refusal(p, () => p.ws.send(frame))).toMatchObject({ code: 'bad_frame', fatal: false });
    p.ws.send(encodeAudioIn(new Float32Array(0), 'f32le'));
    p.ws.send(encodeAudioIn(new Float32Array(1920).fill(1.5), 'f32le'));
    p.sendJson({ type: 'close' });
    expect(await p.nextText('closed')).toMatchObject({ frames: 6, samples: 1920 });
    expect(p.texts().filter((t) => t.type === 'error')).toEqual([]);
  });

  it('decode: flags != 0, K = 0 or a wrong code width -> bad_frame with expectedFrame; F = 0 is accepted; flushed.frames counts frames decoded', async () => {
    const { p, ready } = await started({ direction: 'decode', codebooks: 2 });
    const tokens = (n: number) => ({ numCodebooks: 2, numFrames: n, codes: new Int32Array(2 * n).map((_, i) => (i * 37) % 1024) });
    p.ws.send(encodeTokenPacket(tokens(30), 0, 0, 2));
    const flagged = encodeTokenPacket(tokens(30), 1, 30, 2);
    flagged[1] = 1;
    expect(await refusal(p, () => p.ws.send(flagged))).toMatchObject({ code: 'bad_frame', expectedFrame: 30 });
    const k0 = encodeTokenPacket(tokens(30), 1, 30, 2);
    k0[2] = 0;
    expect(await refusal(p, () => p.ws.send(k0))).toMatchObject({ code: 'bad_frame', expectedFrame: 30 });
    expect(await refusal(p, () => p.ws.send(encodeTokenPacket(tokens(30), 1, 30, 4)))).toMatchObject({ code: 'bad_frame', expectedFrame: 30 });
    p.ws.send(encodeTokenPacket(tokens(0), 1, 30, 2));
    p.ws.send(encodeTokenPacket(tokens(90), 2, 30, 2));
    p.sendJson({ type: 'flush', marker: 'm' });
    const flushed = await p.nextText('flushed');
    const samples = p.binaries().map((b) => decodeAudioOut(b, ready.format).pcm.length).reduce((a, b) => a + b, 0);
    // frames decoded so far, not frames received (the decoder's delay keeps the last ones until close)
    expect(flushed.samples).toBe(samples);
    expect(flushed.frames).toBe(Math.floor(samples / 320));
    expect(flushed.frames).toBeLessThan(120);
    p.sendJson({ type: 'close' });
    expect(await p.nextText('closed')).toMatchObject({ frames: 120, samples: 120 * 320 });
    expect(p.texts().filter((t) => t.type === 'error')).toEqual([]); // none but the three above
  });
});
