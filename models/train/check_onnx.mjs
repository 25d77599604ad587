// Checks an exported model folder with onnxruntime-node on one thread: I/O shapes and dtypes,
// K=1..8 decoding, windowed == one-shot (encoder exact, decoder within 1e-4), and speed on 10 s.
//   node models/train/check_onnx.mjs models/default
import ort from 'onnxruntime-node';
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? 'models/default';
const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
const enc = await ort.InferenceSession.create(path.join(dir, m.encoder.file), opts);
const dec = await ort.InferenceSession.create(path.join(dir, m.decoder.file), opts);
const H = m.hopLength, Q = m.numCodebooks;

function signal(n, seed = 1) {
  let s = seed; const a = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; a[i] = 0.3 * Math.sin(i * 0.031) * Math.sin(i * 0.0007) + 0.05 * (s / 2147483648 - 0.5); }
  return a;
}
async function encode(a) { const r = await enc.run({ audio: new ort.Tensor('float32', a, [1, a.length]) }); return r.codes; }
async function decode(codes, K, T) { const r = await dec.run({ codes: new ort.Tensor('int64', codes, [1, K, T]) }); return r.audio; }
function fail(msg) { console.log('FAIL', msg); process.exitCode = 1; }

const T = 200, a = signal(T * H);
const c = await encode(a);
console.log('encoder out', c.type, c.dims.join('x'));
if (c.type !== 'int64' || c.dims.join() !== [1, Q, T].join()) fail('encoder shape');
const full = c.data; // BigInt64Array [Q, T]
// windowed encode: frames [a0, T) from samples [a0*H - L, T*H), L rounded up to whole frames
const Lf = Math.ceil(m.encoder.leftContext / H);
for (const a0 of [37, 100, 150]) {
  const s0 = Math.max(0, a0 - Lf);
  const w = await encode(a.slice(s0 * H));
  let diff = 0;
  for (let q = 0; q < Q; q++) for (let t = a0; t < T; t++) if (w.data[q * (T - s0) + (t - s0)] !== full[q * T + t]) diff++;
  console.log(`encode window from frame ${a0} (ctx ${Lf} frames): ${diff} differing codes`);
  if (diff) fail('encoder windowing');
}
// K = 1..8 decode
for (let K = 1; K <= Q; K++) {
  const sub = new BigInt64Array(K * T);
  for (let q = 0; q < K; q++) for (let t = 0; t < T; t++) sub[q * T + t] = full[q * T + t];
  const y = await decode(sub, K, T);
  let bad = 0; for (const v of y.data) if (!Number.isFinite(v)) bad++;
  if (y.type !== 'float32' || y.dims.join() !== [1, T * H].join() || bad) fail(`decode K=${K}`);
  if (K === Q || K === 1) {
    // windowed decode of frames [a0, b0) from frames [a0-L, b0+R)
    const L = m.decoder.leftContext, R = m.decoder.lookahead;
    let maxd = 0;
    for (const [a0, b0] of [[0, 20], [20, 77], [77, 200], [150, 151]]) {
      const s0 = Math.max(0, a0 - L), e0 = Math.min(T, b0 + R), n = e0 - s0;
      const w = new BigInt64Array(K * n);
      for (let q = 0; q < K; q++) for (let t = s0; t < e0; t++) w[q * n + (t - s0)] = sub[q * T + t];
      const yw = await decode(w, K, n);
      for (let i = a0 * H; i < b0 * H; i++) maxd = Math.max(maxd, Math.abs(yw.data[i - s0 * H] - y.data[i]));
    }
    console.log(`decode K=${K}: ${y.dims.join('x')} windowed max abs diff ${maxd.toExponential(2)}`);
    if (maxd > 1e-4) fail('decoder windowing');
  }
}
// speed on 10 s, one thread: best of 5 (the machine is shared; the minimum is the least disturbed run)
const ten = signal(10 * m.sampleRate, 7);
let te = Infinity, td = Infinity;
for (let r = 0; r < 5; r++) {
  let t0 = performance.now(); const c10 = await encode(ten); te = Math.min(te, performance.now() - t0);
  t0 = performance.now(); await decode(c10.data, Q, c10.dims[2]); td = Math.min(td, performance.now() - t0);
}
console.log(`10 s one thread, best of 5: encode ${te.toFixed(0)} ms (${(10000 / te).toFixed(1)}x RT), decode ${td.toFixed(0)} ms (${(10000 / td).toFixed(1)}x RT)`);
const mb = (fs.statSync(path.join(dir, m.encoder.file)).size + fs.statSync(path.join(dir, m.decoder.file)).size) / 1e6;
console.log(`graphs total ${mb.toFixed(2)} MB`);
if (mb > 25) fail('size');
