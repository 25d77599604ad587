// How far windowed (streamed) WavTokenizer results drift from one-shot results, as a function of
// the context the runtime feeds around each window. Uses the runtime's own windowing
// (StreamEncoder / StreamDecoder from dist/codec) on real recorded speech (ktuberling-data words)
// and prints markdown tables for docs/models.md.
//
//   npm run build && node models/export/streaming_agreement.mjs --model models/wavtokenizer-small-75
//
// Encoder: % of frames whose windowed code equals the one-shot code.
// Decoder: SNR (dB) of windowed audio against one-shot audio of the same codes, and max |error|.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CodecModel, StreamDecoder, StreamEncoder, concatTokens } from '../../dist/codec/index.js';

const { values: opt } = parseArgs({
  options: {
    model: { type: 'string' },
    seconds: { type: 'string', default: '12' },
    threads: { type: 'string', default: '2' },
    words: { type: 'string', default: '/usr/share/ktuberling/sounds/en' },
    'max-windows': { type: 'string', default: '240' },
  },
});
if (!opt.model) throw new Error('--model DIR is required');
const BATCH = 8; // windows per ONNX run: bounds memory for long windows
const maxWindows = Number(opt['max-windows']);

const model = await CodecModel.load(opt.model, { intraOpThreads: Number(opt.threads), interOpThreads: 1 });
const m = model.manifest;
const hop = m.hopLength;

/** Recorded words, 0.15 s apart, cut to whole frames. */
function speech() {
  const files = readdirSync(opt.words).filter((f) => f.endsWith('.ogg')).sort();
  const target = Number(opt.seconds) * m.sampleRate;
  const parts = [];
  let n = 0;
  for (let i = 0; n < target; i++) {
    const buf = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', join(opt.words, files[i % files.length]),
      '-ac', '1', '-ar', String(m.sampleRate), '-f', 'f32le', '-']);
    const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    parts.push(x, new Float32Array(Math.round(0.15 * m.sampleRate)));
    n += x.length + Math.round(0.15 * m.sampleRate);
  }
  const out = new Float32Array(Math.floor(target / hop) * hop);
  let o = 0;
  for (const p of parts) {
    out.set(p.subarray(0, Math.max(0, Math.min(p.length, out.length - o))), o);
    o += p.length;
  }
  return out;
}

/** Every `step`-th window (all when few), run in small batches; returns [window, result] pairs. */
async function runSampled(windows, run) {
  const step = Math.max(1, Math.ceil(windows.length / maxWindows));
  const picked = windows.filter((_, i) => i % step === 0 || i === windows.length - 1);
  const out = [];
  for (let i = 0; i < picked.length; i += BATCH) {
    const group = picked.slice(i, i + BATCH);
    const res = await run(group);
    group.forEach((w, j) => out.push([w, res[j]]));
  }
  return out;
}

async function encoderAgreement(audio, oneShot, left, right, chunk) {
  const manifest = { ...m, encoder: { ...m.encoder, leftContext: left * hop, lookahead: right * hop } };
  const enc = new StreamEncoder(manifest, { chunkFrames: chunk });
  const windows = [];
  for (let i = 0; i < audio.length; i += 2400) windows.push(...enc.push(audio.subarray(i, i + 2400)));
  windows.push(...enc.finish());
  let same = 0;
  let total = 0;
  for (const [w, block] of await runSampled(windows, (g) => model.encodeWindows(g))) {
    for (let t = 0; t < block.numFrames; t++) {
      if (block.codes[t] === oneShot.codes[w.firstFrame + t]) same++;
      total++;
    }
  }
  return (100 * same) / total;
}

async function decoderAgreement(codes, oneShot, left, right, chunk) {
  const manifest = { ...m, decoder: { ...m.decoder, leftContext: left, lookahead: right } };
  const dec = new StreamDecoder(manifest, { chunkFrames: chunk, numCodebooks: 1 });
  const windows = [];
  for (let t = 0; t < codes.numFrames; t += 5) {
    const n = Math.min(5, codes.numFrames - t);
    windows.push(...dec.push({ numCodebooks: 1, numFrames: n, codes: codes.codes.subarray(t, t + n) }));
  }
  windows.push(...dec.finish());
  let signal = 0;
  let noise = 0;
  let maxErr = 0;
  for (const [w, y] of await runSampled(windows, (g) => model.decodeWindows(g))) {
    for (let i = 0; i < y.length; i++) {
      const ref = oneShot[w.firstSample + i];
      signal += ref * ref;
      noise += (y[i] - ref) ** 2;
      maxErr = Math.max(maxErr, Math.abs(y[i] - ref));
    }
  }
  return { snr: 10 * Math.log10(signal / Math.max(noise, 1e-30)), maxErr };
}

const audio = speech();
const [oneShot] = await model.encodeBatch([audio]);
const [decoded] = await model.decodeBatch([oneShot]);
const reach = Math.ceil(m.encoder.lookahead / hop);
console.log(`model ${m.name}: ${m.sampleRate / hop} tokens/s, ${audio.length / m.sampleRate} s of recorded words, ` +
  `${oneShot.numFrames} frames, ${new Set(oneShot.codes).size} distinct codes; encoder conv reach ${m.encoder.lookahead} samples = ${reach} frames\n`);

const chunks = [1, 5, 25];
const lefts = [0, 5, 10, 20, 40, 80];
console.log(`Encoder, % of frames equal to one-shot, left context 40 frames:\n`);
console.log(`| lookahead (frames) | ${chunks.map((c) => `chunk ${c}`).join(' | ')} |`);
console.log(`|---|${chunks.map(() => '---').join('|')}|`);
for (const right of [0, 1, 2, reach - 1, reach].filter((r, i, a) => r >= 0 && a.indexOf(r) === i)) {
  const row = [];
  for (const c of chunks) row.push((await encoderAgreement(audio, oneShot, 40, right, c)).toFixed(2));
  console.log(`| ${right} | ${row.join(' | ')} |`);
}
console.log(`\nEncoder, % of frames equal to one-shot, lookahead ${reach} frames:\n`);
console.log(`| left context (frames) | ${chunks.map((c) => `chunk ${c}`).join(' | ')} |`);
console.log(`|---|${chunks.map(() => '---').join('|')}|`);
for (const left of lefts) {
  const row = [];
  for (const c of chunks) row.push((await encoderAgreement(audio, oneShot, left, reach, c)).toFixed(2));
  console.log(`| ${left} | ${row.join(' | ')} |`);
}
console.log(`\nDecoder, windowed vs one-shot audio of the same codes, chunk 5 frames: SNR dB (max |error|):\n`);
const decLefts = [5, 20, 40, 80];
const decRights = [2, 5, 20, 40];
console.log(`| left \\ lookahead (frames) | ${decRights.join(' | ')} |`);
console.log(`|---|${decRights.map(() => '---').join('|')}|`);
for (const left of decLefts) {
  const row = [];
  for (const right of decRights) {
    const r = await decoderAgreement(oneShot, decoded, left, right, 5);
    row.push(`${r.snr.toFixed(1)} (${r.maxErr.toFixed(3)})`);
  }
  console.log(`| ${left} | ${row.join(' | ')} |`);
}
await model.release();
