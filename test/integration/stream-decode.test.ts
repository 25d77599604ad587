import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecModel } from '../../codec/model.js';
import { resampleAll } from '../../codec/resample.js';
import { sliceTokens } from '../../codec/stream-encoder.js';
import type { TokenBlock } from '../../codec/pure/types.js';
import { decodeAudioOut, encodeTokenPacket } from '../../protocol/stream.js';
import { DEFAULT_MODEL_DIR, maxAbsDiff, readPcm, speechWav } from '../helpers/fixtures.js';
import { Probe, randomChunks, startTestServer } from '../helpers/stream-harness.js';

let server: Awaited<ReturnType<typeof startTestServer>>;
let model: CodecModel;
let tokens: TokenBlock;

beforeAll(async () => {
  server = await startTestServer({ maxAheadSec: 60, maxBufferedSec: 60, admissionMaxQueueMs: 60_000 });
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
  tokens = await model.encode(readPcm(speechWav('Decoding streams concatenate to the offline decode.'), 24000), 24000);
});
afterAll(async () => {
  await server?.close();
  await model?.release();
});

async function streamDecode(block: TokenBlock, start: Record<string, unknown>, seed: number, flushEvery = 0) {
  const p = new Probe(server.wsUrl);
  await p.opened;
  p.sendJson({ type: 'start', direction: 'decode', codebooks: block.numCodebooks, ...start });
  const ready = await p.nextText('ready');
  let frame = 0;
  let i = 0;
  for (const n of randomChunks(block.numFrames, 1, 20, seed)) {
    p.ws.send(encodeTokenPacket(sliceTokens(block, frame, n), i, frame, ready.codeBytes));
    frame += n;
    if (flushEvery && ++i % flushEvery === 0) p.sendJson({ type: 'flush', marker: `f${i}` });
  }
  p.sendJson({ type: 'close' });
  const closed = await p.nextText('closed', 60_000);
  expect(await p.closed).toBe(1000);
  const packets = p.binaries().map((b) => decodeAudioOut(b, ready.format));
  let sample = 0;
  packets.forEach((pk, j) => {
    expect(pk.seq).toBe(j);
    expect(pk.firstSample).toBe(sample);
    sample += pk.pcm.length;
  });
  const pcm = new Float32Array(sample);
  let o = 0;
  for (const pk of packets) {
    pcm.set(pk.pcm, o);
    o += pk.pcm.length;
  }
  return { ready, closed, pcm, texts: p.texts() };
}

describe('WebSocket decode stream', () => {
  it('token packets of random sizes decode to the offline decode (f32le, model rate), flushes included', async () => {
    const offline = await model.decode(tokens);
    const r = await streamDecode(tokens, { format: 'f32le', chunkMs: 80 }, 3, 4);
    expect(r.ready).toMatchObject({ direction: 'decode', sampleRate: 24000, format: 'f32le', codebooks: 8 });
    expect(r.pcm.length).toBe(tokens.numFrames * 320);
    expect(maxAbsDiff(r.pcm, offline)).toBeLessThan(1e-4);
    expect(r.closed).toMatchObject({ frames: tokens.numFrames, samples: r.pcm.length });
    expect(r.texts.filter((t) => t.type === 'flushed').length).toBeGreaterThan(1);
  });

  it('fewer codebooks, s16le at 16 kHz: the offline decode resampled, within 16-bit rounding', async () => {
    const k3 = sliceTokens(tokens, 0, tokens.numFrames, 3);
    const offline = await resampleAll(await model.decode(k3), 24000, 16000);
    const r = await streamDecode(k3, { format: 's16le', sampleRate: 16000, chunkMs: 120 }, 5);
    expect(r.pcm.length).toBe(offline.length);
    const clipped = offline.map((v) => Math.max(-1, Math.min(1, v)));
    expect(maxAbsDiff(r.pcm, clipped)).toBeLessThan(2 / 32768 + 1e-4);
  });
});
