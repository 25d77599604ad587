/**
 * Speed of the default codec in onnxruntime-node: encode and decode of 10 s of
 * speech on one thread (x real time); streaming-sized runs (80 ms chunks) as context windows and
 * with the stateful streaming graphs, at batch 1, 8 and 32 (the batcher's gain); prep's offline
 * windows at batch 1 to 8 (whether stacking pays on this provider).
 *   npm run bench:codec [-- --model models/default --threads 1]
 */
import { CodecModel, StreamDecoder, StreamEncoder, sliceTokens } from '../codec/index.js';
import type { TokenBlock } from '../codec/pure/types.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

function speech(seconds: number, rate: number): Float32Array {
  const text = 'Speech for the codec benchmark. The quick brown fox jumps over the lazy dog, again and again.';
  const file = join(mkdtempSync(join(tmpdir(), 'tokstream-bench-')), 'speech.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-w', file, text]);
  const wav = execFileSync('ffmpeg', ['-v', 'error', '-stream_loop', '-1', '-i', file, '-t', String(seconds), '-ar', String(rate), '-ac', '1', '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
  return new Float32Array(wav.buffer, wav.byteOffset, wav.byteLength / 4).slice();
}

async function timeIt(fn: () => Promise<unknown>, reps = 5): Promise<number> {
  await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(reps / 2)] / 1000; // median seconds
}

const dir = arg('--model', 'models/default');
const threads = Number(arg('--threads', '1'));
const model = await CodecModel.load(dir, { intraOpThreads: threads, interOpThreads: 1 });
const m = model.manifest;
const seconds = 10;
const pcm = speech(seconds, m.sampleRate);
const tokens = await model.encode(pcm, m.sampleRate);

console.log(`model ${m.name} ${m.version}, ${model.provider.toUpperCase()}, ${threads} intra-op thread(s), ${seconds} s input`);
const encS = await timeIt(() => model.encode(pcm, m.sampleRate, { chunkFrames: 1 << 20 }));
const decS = await timeIt(() => model.decode(tokens, { chunkFrames: 1 << 20 }));
console.log(`one-shot encode  ${(seconds / encS).toFixed(1)}x real time  (${(encS * 1000).toFixed(0)} ms)`);
console.log(`one-shot decode  ${(seconds / decS).toFixed(1)}x real time  (${(decS * 1000).toFixed(0)} ms)`);

// Streaming-sized runs (80 ms chunks), batch 1 vs stacked: what the server's batcher gains, and what
// the stateful graphs save against windows that recompute their context.
const chunk = 6;
const enc = new StreamEncoder(m, { chunkFrames: chunk });
const windows = [...enc.push(pcm), ...enc.finish()].filter((w) => w.audio.length === enc.windowSamples);
const dec = new StreamDecoder(m, { chunkFrames: chunk, numCodebooks: m.numCodebooks });
const decWindowFrames = m.decoder.leftContext + chunk + m.decoder.lookahead;
const decWindows = [...dec.push(tokens), ...dec.finish()].filter((w) => w.tokens.numFrames === decWindowFrames);
const steps = Math.floor(tokens.numFrames / chunk);
const xrt = (frames: number, s: number) => ((frames * m.hopLength) / m.sampleRate / s).toFixed(1);
for (const batch of [1, 8, 32]) {
  const row: string[] = [];
  const encS = await timeIt(async () => {
    for (let i = 0; i + batch <= windows.length; i += batch) await model.encodeBatch(windows.slice(i, i + batch).map((w) => w.audio));
  }, 3);
  row.push(`encode windows ${xrt(Math.floor(windows.length / batch) * batch * chunk, encS)}x`);
  if (model.hasStreamingEncoder) {
    // `batch` streams, each advancing chunk by chunk from its own state
    const s = await timeIt(async () => {
      let states: Float32Array[] = Array.from({ length: batch }, () => new Float32Array(m.encoder.streaming!.stateSize));
      for (let t = 0; t < steps; t++) {
        const audio = pcm.subarray(t * chunk * m.hopLength, (t + 1) * chunk * m.hopLength);
        states = (await model.encodeStepBatch(states.map(() => audio), states)).states;
      }
    }, 3);
    row.push(`stateful ${xrt(steps * chunk * batch, s)}x`);
  }
  const decS = await timeIt(async () => {
    for (let i = 0; i + batch <= decWindows.length; i += batch) await model.decodeBatch(decWindows.slice(i, i + batch).map((w) => w.tokens));
  }, 3);
  row.push(`decode windows ${xrt(Math.floor(decWindows.length / batch) * batch * chunk, decS)}x`);
  if (model.hasStreamingDecoder) {
    const s = await timeIt(async () => {
      let states: Float32Array[] = Array.from({ length: batch }, () => new Float32Array(m.decoder.streaming!.stateSize));
      for (let t = 0; t < steps; t++) {
        const codes: TokenBlock = sliceTokens(tokens, t * chunk, chunk);
        states = (await model.decodeStepBatch(states.map(() => codes), states)).states;
      }
    }, 3);
    row.push(`stateful ${xrt(steps * chunk * batch, s)}x`);
  }
  console.log(`80 ms chunks, batch ${String(batch).padStart(2)}: ${row.join(', ')} real time`);
}
// Offline windows as `tokstream prep` cuts them (250 frames plus context): does stacking them pay?
// On CPU it does not (larger activations fall out of cache), which is why prep runs them one by one there.
{
  const win = new StreamEncoder(m, { chunkFrames: 250 });
  const audio = [...win.push(pcm), ...win.finish()][0].audio;
  const row: string[] = [];
  for (const batch of [1, 2, 4, 8]) {
    const stack = Array.from({ length: batch }, () => audio);
    const s = await timeIt(async () => {
      for (let i = 0; i < 8; i += batch) await model.encodeBatch(stack);
    }, 3);
    row.push(`batch ${batch} ${xrt((8 * audio.length) / m.hopLength, s)}x`);
  }
  console.log(`encoder batch, ${audio.length / m.hopLength}-frame windows: ${row.join(', ')} real time`);
}

// Windowed (streaming) tokens against one-shot tokens: equal except where float rounding, which
// onnxruntime's kernels do differently for different input lengths, decides a near-tie.
for (const chunkFrames of [1, 6, 50]) {
  const windowed = await model.encode(pcm, m.sampleRate, { chunkFrames });
  const oneShot = await model.encode(pcm, m.sampleRate, { chunkFrames: 1 << 20 });
  let same = 0;
  for (let i = 0; i < oneShot.codes.length; i++) if (oneShot.codes[i] === windowed.codes[i]) same++;
  console.log(`windowed (chunk ${chunkFrames} frames) vs one-shot codes: ${((100 * same) / oneShot.codes.length).toFixed(3)}% equal of ${oneShot.codes.length}`);
}
await model.release();
