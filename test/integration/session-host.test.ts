/**
 * ONNX sessions on worker threads (codec/session-host.ts): the same results as sessions on the
 * calling thread, an event loop that keeps turning while a run is in flight, and clear failures
 * once the threads are gone.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecModel } from '../../codec/model.js';
import { ThreadResampler } from '../../codec/resample-thread.js';
import { resampleAll } from '../../codec/resample.js';
import { DEFAULT_MODEL_DIR, readPcm, speechWav } from '../helpers/fixtures.js';
import { ensureBuilt } from '../helpers/prep.js';

const MODEL = DEFAULT_MODEL_DIR;
let threaded: CodecModel;
let inline: CodecModel;
let speech: Float32Array;

beforeAll(async () => {
  threaded = await CodecModel.load(MODEL, { runOn: 'worker', intraOpThreads: 1 });
  inline = await CodecModel.load(MODEL, { runOn: 'caller', intraOpThreads: 1 });
  speech = readPcm(speechWav('Sessions on their own threads give the same tokens.'), 24000);
});

afterAll(async () => {
  await threaded?.release();
  await inline?.release();
});

const equal = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((x, i) => x === b[i]);

describe('sessions on a worker thread', () => {
  it('give exactly the results of sessions on the calling thread: offline and streaming graphs', async () => {
    const [a, b] = await Promise.all([threaded.encode(speech, 24000), inline.encode(speech, 24000)]);
    expect(a.numFrames).toBeGreaterThan(50);
    expect(equal(a.codes, b.codes)).toBe(true);
    const [pa, pb] = [await threaded.decode(a), await inline.decode(a)];
    expect(equal(pa, pb)).toBe(true);

    const size = threaded.manifest.encoder.streaming!.stateSize;
    const chunks = [speech.subarray(0, 1920), speech.subarray(1920, 3840)];
    const s1 = await threaded.encodeStepBatch(chunks, [new Float32Array(size), new Float32Array(size)]);
    const s2 = await inline.encodeStepBatch(chunks, [new Float32Array(size), new Float32Array(size)]);
    expect(s1.tokens.every((t, i) => equal(t.codes, s2.tokens[i].codes))).toBe(true);
    expect(s1.states.every((s, i) => equal(s, s2.states[i]))).toBe(true);
    const dsize = threaded.manifest.decoder.streaming!.stateSize;
    const blocks = s1.tokens;
    const d1 = await threaded.decodeStepBatch(blocks, blocks.map(() => new Float32Array(dsize)));
    const d2 = await inline.decodeStepBatch(blocks, blocks.map(() => new Float32Array(dsize)));
    expect(d1.audio.every((x, i) => equal(x, d2.audio[i])) && d1.finals.every((x, i) => equal(x, d2.finals[i]))).toBe(true);
    // the caller's arrays are stacked into the tensors that travel, never detached
    expect(chunks.map((c) => c.length)).toEqual([1920, 1920]);
  });

  it('leave the event loop free while a run is in flight', async () => {
    const long = new Float32Array(24000 * 40);
    for (let o = 0; o < long.length; o += speech.length) long.set(speech.subarray(0, long.length - o), o);
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 5);
    const t0 = performance.now();
    await threaded.encodeBatch([long]);
    const t1 = performance.now();
    clearInterval(timer);
    const marks = [t0, ...ticks, t1];
    const longestStall = Math.max(...marks.slice(1).map((t, i) => t - marks[i]));
    // a 40 s window takes well over 100 ms; on the calling thread the loop would stall for all of it
    expect(t1 - t0).toBeGreaterThan(100);
    expect(longestStall).toBeLessThan((t1 - t0) / 2);
  });

  it('reject runs with a plain Error once the model is released', async () => {
    const model = await CodecModel.load(MODEL, { runOn: 'worker', intraOpThreads: 1 }, 'encoder');
    const pending = model.encodeBatch([new Float32Array(24000 * 20)]).catch((x: unknown) => x);
    await model.release();
    const e = await pending;
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toHaveProperty('code');
    await expect(model.encodeBatch([new Float32Array(3200)])).rejects.toThrow(/released/);
  });

  it('are released mid-run without taking the process down', () => {
    // stopping a thread inside onnxruntime's run aborts the process ("terminate called after throwing
    // an instance of 'Napi::Error'"); a release must wait for the run. In a child process, since the
    // abort would take the test runner's worker with it.
    ensureBuilt();
    const script = `
      const { CodecModel } = await import(${JSON.stringify(new URL('../../dist/codec/model.js', import.meta.url).href)});
      for (const waitMs of [0, 40, 120, 250]) {
        const model = await CodecModel.load(${JSON.stringify(MODEL)}, { runOn: 'worker', intraOpThreads: 1 }, 'encoder');
        const run = model.encodeBatch([new Float32Array(24000 * 20)]).then(() => 'ran', (e) => 'rejected: ' + e.message);
        await new Promise((r) => setTimeout(r, waitMs));
        await model.release();
        console.log(await run);
      }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).not.toMatch(/terminate called|Napi::Error/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(4);
  }, 150_000);
});

describe('resampling on a worker thread', () => {
  it('gives the samples resampling on the calling thread gives, chunk by chunk', async () => {
    const at44 = readPcm(speechWav('Resampled elsewhere, the same samples.'), 44100);
    const r = await ThreadResampler.create(44100, 24000);
    const parts: Float32Array[] = [];
    for (let o = 0; o < at44.length; o += 7001) parts.push(await r.push(at44.slice(o, o + 7001)));
    parts.push(await r.finish());
    const threadOut = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    parts.reduce((o, p) => (threadOut.set(p, o), o + p.length), 0);
    const local = await resampleAll(at44, 44100, 24000);
    expect(threadOut.length).toBe(Math.round((at44.length * 24000) / 44100));
    expect(equal(threadOut, local)).toBe(true);
  });

  it('refuses an out-of-range rate with the typed error, as on the calling thread', async () => {
    await expect(ThreadResampler.create(400000, 24000)).rejects.toMatchObject({ code: 'invalid_audio' });
  });
});
