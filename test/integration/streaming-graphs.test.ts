import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelBatcher, type BatchModel } from '../../codec/batcher.js';
import { CodecError } from '../../codec/pure/errors.js';
import { parseManifest } from '../../codec/manifest.js';
import { CodecModel } from '../../codec/model.js';
import { concat } from '../../codec/resample.js';
import { StreamDecoder, type DecodeWindow } from '../../codec/pure/stream-decoder.js';
import { StreamEncoder, concatTokens, sliceTokens, type EncodeWindow } from '../../codec/stream-encoder.js';
import type { TokenBlock } from '../../codec/pure/types.js';
import { DEFAULT_MODEL_DIR, maxAbsDiff, readPcm, scratch, speechWav } from '../helpers/fixtures.js';

let model: CodecModel;
let speech: Float32Array[];

beforeAll(async () => {
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
  speech = [
    readPcm(speechWav('Each chunk runs once, with the state of its stream.'), 24000),
    readPcm(speechWav('Der Zustand wird von Stück zu Stück weitergegeben.', 'de'), 24000),
    readPcm(speechWav('Une autre voix, un autre flux.', 'fr'), 24000),
  ];
});
afterAll(async () => {
  await model?.release();
});

/** One-shot encoding: the whole signal, zero-padded to whole frames, in one run. */
async function oneShot(pcm: Float32Array): Promise<TokenBlock> {
  const hop = model.manifest.hopLength;
  const padded = new Float32Array(Math.ceil(pcm.length / hop) * hop);
  padded.set(pcm);
  return (await model.encodeBatch([padded]))[0];
}

/** Deterministic pseudo-random sizes. */
function sizes(seed: number, max: number): () => number {
  let s = seed;
  return () => 1 + ((s = (s * 1103515245 + 12345) & 0x7fffffff) % max);
}

function stateful(chunkFrames: number): StreamEncoder {
  const enc = new StreamEncoder(model.manifest, { chunkFrames, stateful: true });
  expect(enc.stateful).toBe(true);
  return enc;
}

describe('stateful streaming encoder (manifest encoder.streaming)', () => {
  it('ships with the default model and is loaded with it', () => {
    const s = model.manifest.encoder.streaming!;
    expect(s).toBeDefined();
    expect(model.hasStreamingEncoder).toBe(true);
    expect(s.chunkMultiple % model.manifest.hopLength).toBe(0);
    expect(s.stateSize).toBeGreaterThan(0);
  });

  it('gives one-shot codes for packets of any size, with flushes, in chunks of 1, 1.5, 6 and 25 frames', async () => {
    const pcm = speech[0];
    const want = await oneShot(pcm);
    for (const chunkFrames of [1, 1.5, 6, 25]) {
      const enc = stateful(chunkFrames);
      const next = sizes(chunkFrames, 4000);
      const windows: EncodeWindow[] = [];
      for (let pos = 0, i = 0; pos < pcm.length; i++) {
        const n = next();
        windows.push(...enc.push(pcm.subarray(pos, pos + n)));
        pos += n;
        if (i % 7 === 3) windows.push(...enc.flush()); // partial chunks, then the stream goes on
      }
      windows.push(...enc.finish());
      for (const w of windows) {
        expect(w.audio.length % model.manifest.encoder.streaming!.chunkMultiple).toBe(0);
        expect(w.keepFrom).toBe(0);
      }
      // frames are handed out exactly once, in order
      let frame = 0;
      for (const w of windows) {
        expect(w.firstFrame).toBe(frame);
        frame += w.keepCount;
      }
      expect(frame).toBe(want.numFrames);
      const got = concatTokens(await model.encodeWindows(windows));
      expect(got.codes).toEqual(want.codes);
    }
  });

  it('a fractional chunk (20 ms = 1.5 frames) cuts at every 20 ms of audio: each 20 ms push leaves at once with its whole frames', () => {
    const enc = stateful(1.5);
    const pcm = speech[2];
    const frames: number[] = [];
    for (let pos = 0; pos + 480 <= 24 * 480; pos += 480) {
      const windows = enc.push(pcm.subarray(pos, pos + 480));
      expect(windows).toHaveLength(1);
      // everything whole that has arrived is handed out: frames up to floor(samples / hop)
      expect(windows[0].firstFrame + windows[0].keepCount).toBe(Math.floor((pos + 480) / model.manifest.hopLength));
      frames.push(windows[0].keepCount);
    }
    expect(frames).toEqual(Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? 1 : 2)));
    // one push of the same audio cuts the same chunks (what an offline replay of the stream does)
    const once = stateful(1.5).push(pcm.subarray(0, 24 * 480));
    expect(once.map((w) => w.keepCount)).toEqual(frames);
  });

  it('runs no context twice: the model sees each sample once', () => {
    const enc = stateful(6);
    const pcm = speech[1];
    const windows = [...enc.push(pcm), ...enc.finish()];
    const fed = windows.reduce((s, w) => s + w.audio.length, 0);
    const hop = model.manifest.hopLength;
    expect(fed).toBe(Math.ceil(pcm.length / hop) * hop);
    // the context-window plan feeds every steady-state window its receptive field again
    const plain = new StreamEncoder(model.manifest, { chunkFrames: 6 });
    const fedPlain = [...plain.push(pcm), ...plain.finish()].reduce((s, w) => s + w.audio.length, 0);
    expect(fedPlain).toBeGreaterThan(2 * fed);
  });

  it('batches chunks of many streams, never two of one stream at once, with the results of separate runs', async () => {
    const inFlight = new Set<Float32Array>();
    const violations: string[] = [];
    let runs = 0;
    let stacked = 0;
    // the real model, instrumented: a state array is a stream's current state while its chunk runs
    const watched: BatchModel = {
      manifest: model.manifest,
      encodeBatch: (a) => model.encodeBatch(a),
      decodeBatch: (b) => model.decodeBatch(b),
      async encodeStepBatch(audio, states) {
        runs++;
        stacked += audio.length;
        if (new Set(states).size !== states.length) violations.push('two chunks of one stream in a run');
        for (const s of states) {
          if (inFlight.has(s)) violations.push('a stream ran twice at once');
          inFlight.add(s);
        }
        try {
          return await model.encodeStepBatch(audio, states);
        } finally {
          for (const s of states) inFlight.delete(s);
        }
      },
    };
    const batcher = new ModelBatcher(watched, { maxBatch: 4, maxWaitMs: 2, maxConcurrent: 2 });
    const streams = [0, 1, 2, 0, 1, 2].map((i, id) => ({ id: `s${id}`, pcm: speech[i].subarray(id * 500) }));
    const results = await Promise.all(
      streams.map(async ({ id, pcm }) => {
        const enc = stateful(6);
        // every chunk is submitted at once: the batcher must order them through the carried state
        const windows = [...enc.push(pcm), ...enc.finish()];
        const blocks = await Promise.all(windows.map((w) => batcher.submitEncode(w, { streamId: id })));
        return concatTokens(blocks);
      }),
    );
    await batcher.close();
    expect(violations).toEqual([]);
    expect(stacked / runs).toBeGreaterThan(1.5); // streams really shared runs
    for (let i = 0; i < streams.length; i++) {
      const alone = stateful(6);
      const want = concatTokens(await model.encodeWindows([...alone.push(streams[i].pcm), ...alone.finish()]));
      expect(results[i].codes).toEqual(want.codes);
    }
  });

  it('falls back to context windows when the chunk is not a whole chunk multiple, or on request', () => {
    expect(new StreamEncoder(model.manifest, { chunkFrames: 6 }).stateful).toBe(false);
    const odd = JSON.parse(JSON.stringify(model.manifest));
    odd.encoder.streaming.chunkMultiple = 4 * odd.hopLength;
    expect(new StreamEncoder(odd, { chunkFrames: 6, stateful: true }).stateful).toBe(false);
    expect(new StreamEncoder(odd, { chunkFrames: 8, stateful: true }).stateful).toBe(true);
  });
});

function statefulDecoder(chunkFrames: number, numCodebooks: number): StreamDecoder {
  const dec = new StreamDecoder(model.manifest, { chunkFrames, numCodebooks, stateful: true });
  expect(dec.stateful).toBe(true);
  return dec;
}

describe('stateful streaming decoder (manifest decoder.streaming)', () => {
  let tokens: TokenBlock;
  beforeAll(async () => {
    tokens = await oneShot(speech[0]);
  });

  it('concatenates to one-shot decoding for packets of any size, with flushes, at 8 and 3 codebooks', async () => {
    expect(model.hasStreamingDecoder).toBe(true);
    for (const [chunkFrames, k] of [[6, 8], [1, 3], [25, 8]]) {
      const codes = sliceTokens(tokens, 0, tokens.numFrames, k);
      const want = (await model.decodeBatch([codes]))[0];
      const dec = statefulDecoder(chunkFrames, k);
      const next = sizes(chunkFrames + k, 9);
      const windows: DecodeWindow[] = [];
      for (let f = 0, i = 0; f < codes.numFrames; i++) {
        const n = Math.min(next(), codes.numFrames - f);
        windows.push(...dec.push(sliceTokens(sliceTokens(codes, f, n), 0, n)));
        f += n;
        if (i % 5 === 2) windows.push(...dec.flush());
      }
      windows.push(...dec.finish());
      let sample = 0;
      for (const w of windows) {
        expect(w.firstSample).toBe(sample);
        sample += w.keepCount;
      }
      const got = concat(await model.decodeWindows(windows));
      expect(got.length).toBe(want.length);
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
    }
  });

  it('a one-frame stream gives the one-frame decode', async () => {
    const one = sliceTokens(tokens, 40, 1);
    const want = (await model.decodeBatch([one]))[0];
    const dec = statefulDecoder(6, 8);
    const got = concat(await model.decodeWindows([...dec.push(one), ...dec.finish()]));
    expect(got.length).toBe(want.length);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
  });

  it('through the batcher: streams share runs, tails wait for their stream, results match separate runs', async () => {
    const batcher = new ModelBatcher(model, { maxBatch: 4, maxWaitMs: 2, maxConcurrent: 2 });
    const offsets = [0, 7, 19, 31, 44];
    const got = await Promise.all(
      offsets.map(async (o, i) => {
        const dec = statefulDecoder(6, 8);
        const codes = sliceTokens(tokens, o, tokens.numFrames - o);
        const windows = [...dec.push(codes), ...dec.finish()];
        return concat(await Promise.all(windows.map((w) => batcher.submitDecode(w, { streamId: `d${i}` }))));
      }),
    );
    await batcher.close();
    for (let i = 0; i < offsets.length; i++) {
      const dec = statefulDecoder(6, 8);
      const codes = sliceTokens(tokens, offsets[i], tokens.numFrames - offsets[i]);
      const alone = concat(await model.decodeWindows([...dec.push(codes), ...dec.finish()]));
      expect(got[i].length).toBe(alone.length);
      expect(maxAbsDiff(got[i], alone)).toBeLessThan(1e-5); // batch size changes GEMM rounding only
    }
  });

  it('computes each frame once, where context windows recompute the decoder context', () => {
    const stateful = statefulDecoder(6, 8);
    const fed = [...stateful.push(tokens), ...stateful.finish()].reduce((s, w) => s + w.tokens.numFrames, 0);
    expect(fed).toBe(tokens.numFrames);
    const plain = new StreamDecoder(model.manifest, { chunkFrames: 6, numCodebooks: 8 });
    const fedPlain = [...plain.push(tokens), ...plain.finish()].reduce((s, w) => s + w.tokens.numFrames, 0);
    expect(fedPlain).toBeGreaterThan(4 * fed);
  });
});

describe('manifest encoder.streaming / decoder.streaming', () => {
  const base = () => JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'manifest.json'), 'utf8'));
  const refused = (mutate: (m: any) => void, message: RegExp) => {
    const m = base();
    mutate(m);
    expect(() => parseManifest(m, 'manifest.json')).toThrow(message);
  };

  it('is optional, and checked when present', () => {
    const m = base();
    delete m.encoder.streaming;
    expect(parseManifest(m, 'manifest.json').encoder.streaming).toBeUndefined();
    refused((m) => (m.causal = false), /needs a causal model/);
    refused((m) => (m.encoder.streaming.chunkMultiple = 100), /multiple of hopLength/);
    refused((m) => (m.encoder.streaming.stateOutput.shape = ['batch', 7]), /must equal stateInput/);
    refused((m) => (m.encoder.streaming.stateInput.shape = ['batch', 'state']), /stateInput.shape\[1\]/);
    refused((m) => (m.encoder.streaming.file = '../encoder.onnx'), /plain file name/);
    refused((m) => (m.decoder.streaming.finalOutput.shape = ['batch', 10]), /must equal delaySamples/);
    refused((m) => delete m.decoder.streaming.finalOutput, /finalOutput" missing/);
    refused((m) => (m.decoder.streaming.input.dtype = 'float32'), /decoder.streaming.input.dtype/);
  });

  it('a folder whose streaming graph does not match its hash is refused at load', async () => {
    const dir = join(scratch, 'streaming-broken');
    cpSync(DEFAULT_MODEL_DIR, dir, { recursive: true });
    const m = base();
    m.encoder.streaming.sha256 = '0'.repeat(64);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    const err = await CodecModel.load(dir).catch((e) => e);
    expect(err).toBeInstanceOf(CodecError);
    expect(err.code).toBe('model_broken');
    expect(err.message).toMatch(/encoder_stream\.onnx: sha256/);
  });
});
