import { beforeAll, describe, expect, it } from 'vitest';
import { CodecModel, StreamEncoder, concatTokens, type TokenBlock } from '../../codec/index.js';
import { DEFAULT_MODEL_DIR, maxAbsDiff, readPcm, speechWav } from '../helpers/fixtures.js';

let model: CodecModel;
let pcm: Float32Array;
let oneShot: TokenBlock;

beforeAll(async () => {
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
  pcm = readPcm(speechWav('Windowed encoding must give exactly the tokens of one pass over the whole signal.'), 24000);
  oneShot = (await model.encodeBatch([padToHop(pcm, 320)]))[0];
});

function padToHop(x: Float32Array, hop: number): Float32Array {
  const out = new Float32Array(Math.ceil(x.length / hop) * hop);
  out.set(x);
  return out;
}

function mismatches(a: TokenBlock, b: TokenBlock): number {
  expect([a.numCodebooks, a.numFrames]).toEqual([b.numCodebooks, b.numFrames]);
  let n = 0;
  for (let i = 0; i < a.codes.length; i++) if (a.codes[i] !== b.codes[i]) n++;
  return n;
}

describe('windowed encoding of the causal default model', () => {
  it('equals one-shot encoding for every chunk size (100% of frames)', async () => {
    expect(model.manifest.causal).toBe(true);
    for (const chunkFrames of [1, 2, 7, 33, 750]) {
      const windowed = await model.encode(pcm, 24000, { chunkFrames });
      expect(mismatches(windowed, oneShot), `chunk ${chunkFrames}`).toBe(0);
    }
  });

  it('equals one-shot encoding when PCM arrives in random pieces', async () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const enc = new StreamEncoder(model.manifest, { chunkFrames: 5 });
    const blocks: TokenBlock[] = [];
    for (let i = 0; i < pcm.length; ) {
      const n = 1 + Math.floor(rand() * 3000);
      blocks.push(...(await model.encodeWindows(enc.push(pcm.subarray(i, i + n)))));
      i += n;
      expect(enc.bufferedSamples).toBeLessThan(enc.windowSamples + 3000 + 320 * 6);
    }
    blocks.push(...(await model.encodeWindows(enc.finish())));
    expect(mismatches(concatTokens(blocks), oneShot)).toBe(0);
  });

  it('produces varied codes (the check above can fail)', () => {
    expect(new Set(oneShot.codes.subarray(0, oneShot.numFrames)).size).toBeGreaterThan(5);
  });
});

describe('decoding', () => {
  it('windowed decoding equals one-shot decoding for every leading codebook subset', async () => {
    for (const k of [1, 2, 4, 8]) {
      const tokens = { numCodebooks: k, numFrames: oneShot.numFrames, codes: oneShot.codes.slice(0, k * oneShot.numFrames) };
      const [whole] = await model.decodeBatch([tokens]);
      expect(whole.length).toBe(oneShot.numFrames * 320);
      for (const chunkFrames of [1, 9, 100]) {
        const windowed = await model.decode(tokens, { chunkFrames });
        expect(maxAbsDiff(whole, windowed), `k=${k} chunk=${chunkFrames}`).toBeLessThan(1e-4);
      }
    }
  });

  it('refuses codebook counts and codes the model does not have', async () => {
    const t = oneShot.numFrames;
    await expect(model.decode({ numCodebooks: 9, numFrames: t, codes: new Int32Array(9 * t) })).rejects.toMatchObject({ code: 'model_mismatch' });
    const bad = oneShot.codes.slice();
    bad[5] = 1024;
    await expect(model.decode({ numCodebooks: 8, numFrames: t, codes: bad })).rejects.toMatchObject({ code: 'invalid_tokens' });
    bad[5] = -1;
    await expect(model.decode({ numCodebooks: 8, numFrames: t, codes: bad })).rejects.toMatchObject({ code: 'invalid_tokens' });
    await expect(model.encode(pcm, 24000, { codebooks: 0 })).rejects.toMatchObject({ code: 'model_mismatch' });
  });
});

describe('decoding in batches (docs/http-api.md, POST /v1/decode)', () => {
  it('gives the audio of decoding alone up to one 16-bit step', async () => {
    const { numCodebooks: k, numFrames: t } = oneShot;
    // same-sized neighbours with other content: the frames in another order
    const shuffled = (shift: number): TokenBlock => {
      const codes = new Int32Array(oneShot.codes.length);
      for (let c = 0; c < k; c++) for (let f = 0; f < t; f++) codes[c * t + f] = oneShot.codes[c * t + ((f + shift) % t)];
      return { numCodebooks: k, numFrames: t, codes };
    };
    const [alone] = await model.decodeBatch([oneShot]);
    const batched = (await model.decodeBatch([shuffled(11), oneShot, shuffled(29), shuffled(53)]))[1];
    expect(batched.length).toBe(alone.length);
    expect(maxAbsDiff(alone, batched)).toBeLessThan(1 / 32768);
  });
});
