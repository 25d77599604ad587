import { beforeAll, describe, expect, it } from 'vitest';
import { CodecModel, concat, openAudio, toMonoFloat } from '../../codec/index.js';
import { DEFAULT_MODEL_DIR, convertAudio, readPcm, speechWav } from '../helpers/fixtures.js';

let model: CodecModel;
let source: string;

beforeAll(async () => {
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
  source = speechWav('Formats and rates.');
});

async function collect(pcm: AsyncIterable<Float32Array>): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for await (const p of pcm) parts.push(p);
  return concat(parts);
}

const RATES = [8000, 16000, 22050, 44100, 48000];

describe('encode then decode of every container, rate and channel layout', () => {
  for (const ext of ['wav', 'mp3', 'flac', 'ogg', 'opus']) {
    for (const channels of [1, 2]) {
      it(`${ext}, ${channels === 1 ? 'mono' : 'stereo'}`, async () => {
        for (const rate of ext === 'opus' ? [8000, 16000, 48000] : RATES) {
          const file = convertAudio(source, ext, rate, channels);
          const sourceSamples = readPcm(file, rate).length; // what ffmpeg itself decodes, at the file's rate
          const input = await openAudio({ path: file }, { sampleRate: 24000 });
          expect(input.reader).toBe(ext === 'wav' ? 'wav' : 'ffmpeg');
          const pcm = await collect(input.pcm);
          const expected = Math.round((sourceSamples * 24000) / rate);
          // libsamplerate (wav) is exact by construction; ffmpeg's soxr path may differ by a few samples
          expect(Math.abs(pcm.length - expected), `${ext} ${rate} Hz`).toBeLessThanOrEqual(ext === 'wav' ? 0 : 8);
          const tokens = await model.encode(pcm, 24000, { codebooks: 4 });
          expect(tokens.numFrames).toBe(Math.ceil(pcm.length / 320));
          const audio = await model.decode(tokens);
          expect(audio.length).toBe(tokens.numFrames * 320);
          expect(audio.every(Number.isFinite)).toBe(true);
        }
      });
    }
  }
});

describe('PCM sample formats in WAV', () => {
  it('reads int16/24/32 and float32/64 WAV to the same signal', async () => {
    const reference = readPcm(source, 24000);
    for (const fmt of ['pcm_s16le', 'pcm_s24le', 'pcm_s32le', 'pcm_f32le', 'pcm_f64le', 'pcm_u8']) {
      const file = convertAudio(source, 'wav', 24000, 2, ['-c:a', fmt]);
      const input = await openAudio({ path: file }, { sampleRate: 24000 });
      const pcm = await collect(input.pcm);
      expect(pcm.length).toBe(reference.length);
      let maxDiff = 0;
      for (let i = 0; i < pcm.length; i++) maxDiff = Math.max(maxDiff, Math.abs(pcm[i] - reference[i]));
      expect(maxDiff, fmt).toBeLessThan(fmt === 'pcm_u8' ? 1 / 64 : 1e-3);
    }
  });
});

describe('toMonoFloat', () => {
  it('reads mono int16 and float32 the same through its fast path, at any byte offset', () => {
    const values = [0, 1, -1, 32767, -32768, 12345, -2];
    for (const offset of [0, 1, 2, 3]) {
      const s16 = new Uint8Array(offset + values.length * 2);
      const dv = new DataView(s16.buffer);
      values.forEach((v, i) => dv.setInt16(offset + i * 2, v, true));
      expect(Array.from(toMonoFloat(s16.subarray(offset), 's16le', 1))).toEqual(values.map((v) => v / 32768));
      // stereo goes the general way: both channels equal gives the same signal
      const st = new Uint8Array(offset + values.length * 4);
      const dst = new DataView(st.buffer);
      values.forEach((v, i) => (dst.setInt16(offset + i * 4, v, true), dst.setInt16(offset + i * 4 + 2, v, true)));
      expect(Array.from(toMonoFloat(st.subarray(offset), 's16le', 2))).toEqual(values.map((v) => v / 32768));

      const f32 = new Uint8Array(offset + values.length * 4);
      const df = new DataView(f32.buffer);
      values.forEach((v, i) => df.setFloat32(offset + i * 4, v / 7, true));
      expect(Array.from(toMonoFloat(f32.subarray(offset), 'f32le', 1))).toEqual(values.map((v) => Math.fround(v / 7)));
      df.setFloat32(offset + 8, NaN, true);
      expect(() => toMonoFloat(f32.subarray(offset), 'f32le', 1)).toThrow(/sample 2 is NaN/);
    }
  });
});
