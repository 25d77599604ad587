import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { CodecModel, concat } from '../../codec/index.js';
import { readPcm, scratch, speechWav } from '../helpers/fixtures.js';

// A random-weight WavTokenizer (released on-disk layout, reduced width) goes through the real
// exporter; onnxruntime-node must then compute what the PyTorch implementation computes.

const PYTHON = '/usr/bin/python3';
const EXPORT_DIR = new URL('../../models/export/', import.meta.url).pathname;
const RATE = 24000;
/** Near tie: the two nearest codebook entries are closer than this, relative to |x|^2 (float32 cancels terms of that size). */
const NEAR_TIE = 1e-5;
const SMALL = ['--n-filters', '8', '--dimension', '64', '--dim', '64', '--intermediate-dim', '128', '--layers', '2', '--calib-seconds', '8'];

function python(script: string, args: string[]): string {
  return execFileSync(PYTHON, [join(EXPORT_DIR, script), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function writeF32(path: string, x: Float32Array): string {
  writeFileSync(path, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  return path;
}

function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function readI64(path: string): BigInt64Array {
  const b = readFileSync(path);
  return new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Real speech: an espeak-ng sentence, a recorded ktuberling word, and a second sentence. */
function speech(): Float32Array {
  const parts = [
    readPcm(speechWav('Seven slow ships sailed past the harbour lights before dawn.'), RATE),
    readPcm('/usr/share/ktuberling/sounds/en/flower.ogg', RATE),
    readPcm(speechWav('Quantised speech tokens must survive the trip through the exporter.', 'en-gb'), RATE),
  ];
  return concat(parts);
}

describe.each([
  { hop: 320, lookahead: 1195 },
  { hop: 600, lookahead: 2278 },
])('WavTokenizer export, hop $hop', ({ hop, lookahead }) => {
  const dir = join(scratch, `wavtokenizer-${hop}`);
  const ckpt = join(dir, 'ckpt');
  const modelDir = join(dir, `wavtokenizer-test-${hop}`);
  const dump = join(dir, 'dump');
  let model: CodecModel;
  let audio: Float32Array;
  const inputs: Record<string, Float32Array> = {};

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    python('make_random_checkpoint.py', ['--hop', String(hop), '--out', ckpt, '--seed', String(hop), ...SMALL]);
    python('wavtokenizer.py', ['--checkpoint', join(ckpt, 'model.ckpt'), '--config', join(ckpt, 'config.yaml'), '--out', modelDir]);
    const pcm = speech();
    audio = pcm.slice(0, Math.floor(pcm.length / hop) * hop);
    inputs.speech = audio;
    inputs.ragged = pcm.slice(0, 7 * hop + 131); // not a multiple of the hop
    inputs.oneframe = pcm.slice(4000, 4000 + Math.floor(hop / 3)); // shorter than every conv's padding
    const files = Object.entries(inputs).map(([name, x]) => writeF32(join(dir, `${name}.f32`), x));
    python('dump_reference.py', ['--checkpoint', join(ckpt, 'model.ckpt'), '--config', join(ckpt, 'config.yaml'), '--out', dump, '--audio', ...files]);
    model = await CodecModel.load(modelDir, { intraOpThreads: 1 });
  });

  it('writes a manifest per the contract, with provenance of the converted checkpoint', () => {
    const m = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({
      format: 'tokstream-model/1', name: `wavtokenizer-test-${hop}`, sampleRate: RATE, hopLength: hop,
      numCodebooks: 1, codebookSize: 4096, causal: false, license: 'MIT',
      encoder: { file: 'encoder.onnx', input: { name: 'audio', dtype: 'float32' }, output: { name: 'codes', dtype: 'int64' }, lookahead },
      decoder: { file: 'decoder.onnx', input: { name: 'codes', dtype: 'int64' }, output: { name: 'audio', dtype: 'float32' } },
    });
    expect(m.encoder.sha256).toBe(sha256(join(modelDir, 'encoder.onnx')));
    expect(m.decoder.sha256).toBe(sha256(join(modelDir, 'decoder.onnx')));
    expect(m.provenance.checkpointSha256).toBe(sha256(join(ckpt, 'model.ckpt')));
    expect(m.provenance.configSha256).toBe(sha256(join(ckpt, 'config.yaml')));
    expect(m.provenance.architecture.encoderStrides.reduce((a: number, b: number) => a * b, 1)).toBe(hop);
  });

  it('encodes real speech to the PyTorch codes (>= 99.9% of frames, near ties aside), many distinct', async () => {
    const [got] = await model.encodeBatch([audio]);
    const want = readI64(join(dump, 'speech.codes.i64'));
    const margin = readF32(join(dump, 'speech.margin.f32'));
    expect(got.numFrames).toBe(audio.length / hop);
    expect(want.length).toBe(got.numFrames);
    let same = 0;
    let nearTies = 0;
    for (let t = 0; t < want.length; t++) {
      if (BigInt(got.codes[t]) === want[t]) same++;
      else if (margin[t] < NEAR_TIE) nearTies++;
    }
    expect(same / want.length).toBeGreaterThanOrEqual(0.999 - nearTies / want.length);
    expect(same / want.length).toBeGreaterThanOrEqual(0.99);
    expect(new Set(got.codes).size).toBeGreaterThanOrEqual(20);
  });

  it('decodes the PyTorch codes to the PyTorch audio within 1e-4', async () => {
    const codes = readI64(join(dump, 'speech.codes.i64'));
    const [got] = await model.decodeBatch([{ numCodebooks: 1, numFrames: codes.length, codes: Int32Array.from(codes, Number) }]);
    const want = readF32(join(dump, 'speech.audio.f32'));
    expect(got.length).toBe(want.length);
    let maxErr = 0;
    let energy = 0;
    for (let i = 0; i < want.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
      energy += want[i] * want[i];
    }
    expect(maxErr).toBeLessThanOrEqual(1e-4);
    expect(Math.sqrt(energy / want.length)).toBeGreaterThan(0.01); // not a silent decoder
  });

  it('takes any length and batch: ragged and sub-frame inputs, batch rows independent', async () => {
    const session = await ort.InferenceSession.create(join(modelDir, 'encoder.onnx'), { intraOpNumThreads: 1 });
    for (const name of ['ragged', 'oneframe']) {
      const x = inputs[name];
      const batch = new Float32Array(3 * x.length);
      batch.set(x, 0);
      batch.set(x.map((v) => v * 0.5), x.length); // a different row must not disturb the others
      batch.set(x, 2 * x.length);
      const out = await session.run({ audio: new ort.Tensor('float32', batch, [3, x.length]) });
      const want = readI64(join(dump, `${name}.codes.i64`));
      const frames = Math.ceil(x.length / hop);
      expect(out.codes.dims).toEqual([3, 1, frames]);
      const codes = out.codes.data as BigInt64Array;
      expect([...codes.subarray(0, frames)], name).toEqual([...want]);
      expect([...codes.subarray(2 * frames)], name).toEqual([...want]);
    }
    await session.release();
  });

  it('--int8-decoder quantises the decoder: close to PyTorch (SNR > 20 dB), no longer exact', async () => {
    const int8Dir = join(dir, `wavtokenizer-int8-${hop}`);
    python('wavtokenizer.py', ['--checkpoint', join(ckpt, 'model.ckpt'), '--out', int8Dir, '--int8-decoder']);
    const m = JSON.parse(readFileSync(join(int8Dir, 'manifest.json'), 'utf8'));
    expect(m.provenance.decoderWeights).toMatch(/int8/);
    expect(m.provenance.config).toBeNull(); // converted from shapes alone, as for releases without a yaml
    const int8 = await CodecModel.load(int8Dir, { intraOpThreads: 1 });
    const codes = readI64(join(dump, 'speech.codes.i64'));
    const [got] = await int8.decodeBatch([{ numCodebooks: 1, numFrames: codes.length, codes: Int32Array.from(codes, Number) }]);
    const want = readF32(join(dump, 'speech.audio.f32'));
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < want.length; i++) {
      signal += want[i] ** 2;
      noise += (got[i] - want[i]) ** 2;
    }
    const snr = 10 * Math.log10(signal / noise);
    expect(snr).toBeGreaterThan(20);
    expect(snr).toBeLessThan(100);
    await int8.release();
  });

  it('rejects a config that contradicts the checkpoint with a clear error', () => {
    const cfg = readFileSync(join(ckpt, 'config.yaml'), 'utf8').replace(/hop_length: \d+/, 'hop_length: 512');
    writeFileSync(join(dir, 'bad.yaml'), cfg);
    const r = spawnSync(PYTHON, [join(EXPORT_DIR, 'wavtokenizer.py'), '--checkpoint', join(ckpt, 'model.ckpt'), '--config', join(dir, 'bad.yaml'), '--out', join(dir, 'bad')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/hop_length 512 != encoder hop/);
  });
});
