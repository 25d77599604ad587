// ONNX (onnxruntime-node, one thread) against the PyTorch reference written by torch_codes.py.
//   node models/train/check_parity.mjs MODEL_DIR REF_DIR...
// For each REF_DIR: encodes input.npy and counts frames whose 8 codes all equal codes.npy; decodes the
// PyTorch codes (all 8, as torch_codes.py decodes by default) and reports the max abs difference to audio.npy.
import ort from 'onnxruntime-node';
import fs from 'node:fs';
import path from 'node:path';

function readNpy(file) {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  const body = buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length);
  if (descr === '<f4') return { data: new Float32Array(body), shape };
  if (descr === '<i8') return { data: new BigInt64Array(body), shape };
  throw new Error(`${file}: unsupported dtype ${descr}`);
}

const [modelDir, ...refs] = process.argv.slice(2);
const m = JSON.parse(fs.readFileSync(path.join(modelDir, 'manifest.json'), 'utf8'));
const opts = { intraOpNumThreads: 1, interOpNumThreads: 1 };
const enc = await ort.InferenceSession.create(path.join(modelDir, m.encoder.file), opts);
const dec = await ort.InferenceSession.create(path.join(modelDir, m.decoder.file), opts);
let frames = 0, equalFrames = 0, worst = 0;
for (const ref of refs) {
  const input = readNpy(path.join(ref, 'input.npy'));
  const codes = readNpy(path.join(ref, 'codes.npy'));
  const audio = readNpy(path.join(ref, 'audio.npy'));
  const [Q, T] = codes.shape;
  const out = (await enc.run({ audio: new ort.Tensor('float32', input.data, [1, input.data.length]) })).codes.data;
  let eq = 0;
  for (let t = 0; t < T; t++) {
    let same = true;
    for (let q = 0; q < Q; q++) if (out[q * T + t] !== codes.data[q * T + t]) same = false;
    if (same) eq++;
  }
  const y = (await dec.run({ codes: new ort.Tensor('int64', codes.data, [1, Q, T]) })).audio.data;
  let d = 0;
  for (let i = 0; i < y.length; i++) d = Math.max(d, Math.abs(y[i] - audio.data[i]));
  console.log(`${ref}: frames ${T}, equal ${eq} (${(100 * eq / T).toFixed(2)}%), decode max abs diff ${d.toExponential(2)}`);
  frames += T; equalFrames += eq; worst = Math.max(worst, d);
}
console.log(`TOTAL frames ${frames}, equal ${(100 * equalFrames / frames).toFixed(3)}%, worst decode diff ${worst.toExponential(2)}`);
if (equalFrames < 0.999 * frames || worst > 1e-3) process.exitCode = 1;
