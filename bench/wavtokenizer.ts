/**
 * WavTokenizer on CPU: onnxruntime-node against the PyTorch implementation, side by side.
 *
 * Builds the full-size 75 tokens/s architecture (shapes of the released small/medium 320-hop
 * checkpoints, random weights), exports it with models/export/wavtokenizer.py, and times encode
 * and decode of 10 s of real speech in both runtimes with the same thread count (PyTorch's
 * OpenBLAS pool included, split as PyTorch runs fastest: bench_torch.py). Runs alternate
 * (PyTorch, then each onnxruntime variant, per round) so machine load hits all alike; medians
 * are reported with the ratio PyTorch time / onnxruntime time.
 *
 *   npm run build && node dist/bench/wavtokenizer.js [--threads 2] [--seconds 10] [--rounds 5]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const ROOT = new URL('../../', import.meta.url).pathname; // dist/bench/ -> repository root
const EXPORT = join(ROOT, 'models/export');
const PYTHON = '/usr/bin/python3';
const RATE = 24000;

const { values: opt } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
  },
});
const threads = Number(opt.threads);
const rounds = Number(opt.rounds);

interface Variant {
  name: string;
  enc: ort.InferenceSession;
  dec: ort.InferenceSession;
}

function speech(seconds: number, dir: string): Float32Array {
  const wav = join(dir, 'speech.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-w', wav,
    'A tokenizer turns a waveform into a short sequence of integers. The decoder turns them back into sound, ' +
    'and the benchmark measures how long each direction takes on this machine with the same number of threads.']);
  const raw = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', wav, '-ac', '1', '-ar', String(RATE), '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
  const one = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const out = new Float32Array(seconds * RATE);
  for (let i = 0; i < out.length; i++) out[i] = one[i % one.length];
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The PyTorch side: a long-lived python process answering `encode` / `decode` with one timed run. */
function startTorch(ckptDir: string, audioPath: string) {
  const child = spawn(PYTHON, [join(EXPORT, 'bench_torch.py'), '--checkpoint', join(ckptDir, 'model.ckpt'),
    '--config', join(ckptDir, 'config.yaml'), '--audio', audioPath, '--threads', String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error('bench_torch.py exited early');
    return JSON.parse(r.value);
  };
  return {
    ready: next,
    ask: async (cmd: string) => {
      child.stdin.write(`${cmd}\n`);
      return next();
    },
    stop: () => child.stdin.end('quit\n'),
  };
}

/**
 * After a run, OpenBLAS, OpenMP and onnxruntime pool threads keep spinning for a while; without
 * a pause the next run (the other runtime's, as runs alternate) shares the cores with them.
 */
const SETTLE_MS = 300;

async function timeRun(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<[number, ort.InferenceSession.OnnxValueMapType]> {
  const t0 = performance.now();
  const out = await session.run(feeds);
  return [(performance.now() - t0) / 1000, out];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tokstream-bench-wavtokenizer-'));
  try {
    const pcm = speech(Number(opt.seconds), dir);
    const audioPath = join(dir, 'speech.f32');
    writeFileSync(audioPath, Buffer.from(pcm.buffer));
    const ckpt = join(dir, 'ckpt');
    const model = join(dir, 'wavtokenizer-bench-75');
    console.log('building a full-size random 75 tok/s checkpoint and exporting it ...');
    execFileSync(PYTHON, [join(EXPORT, 'make_random_checkpoint.py'), '--hop', '320', '--out', ckpt, '--calib-seconds', '20'], { stdio: 'inherit' });
    execFileSync(PYTHON, [join(EXPORT, 'wavtokenizer.py'), '--checkpoint', join(ckpt, 'model.ckpt'), '--config', join(ckpt, 'config.yaml'), '--out', model], { stdio: 'inherit' });

    const torch = startTorch(ckpt, audioPath);
    const info = await torch.ready();
    await torch.ask(`dump ${dir}`);
    const torchCodes = new BigInt64Array(readFileSync(join(dir, 'torch.codes.i64')).buffer.slice(0));
    const torchAudio = new Float32Array(readFileSync(join(dir, 'torch.audio.f32')).buffer.slice(0));

    // int8 MatMul weights for the decoder (the encoder is convolutions + LSTM: nothing to gain there).
    execFileSync(PYTHON, [join(EXPORT, 'quantize_int8.py'), join(model, 'decoder.onnx'), join(model, 'decoder.int8.onnx')], { stdio: 'inherit' });
    const variants: Variant[] = [];
    // The runtime's own session settings (graph optimisation 'all').
    const so: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    };
    for (const [name, decoder] of [
      ['onnxruntime fp32', 'decoder.onnx'],
      ['onnxruntime fp32 encoder, int8-MatMul decoder', 'decoder.int8.onnx'],
    ] as const) {
      variants.push({
        name,
        enc: await ort.InferenceSession.create(join(model, 'encoder.onnx'), so),
        dec: await ort.InferenceSession.create(join(model, decoder), so),
      });
    }

    const audioFeed = { audio: new ort.Tensor('float32', pcm, [1, pcm.length]) };
    const codesFeed = { codes: new ort.Tensor('int64', torchCodes, [1, 1, torchCodes.length]) };
    const times: Record<string, { enc: number[]; dec: number[] }> = { torch: { enc: [], dec: [] } };
    const accuracy: Record<string, string> = {};
    for (const v of variants) {
      times[v.name] = { enc: [], dec: [] };
      const [, e] = await timeRun(v.enc, audioFeed); // warm-up doubles as the accuracy check
      const [, d] = await timeRun(v.dec, codesFeed);
      const codes = e.codes.data as BigInt64Array;
      const y = d.audio.data as Float32Array;
      let same = 0;
      for (let i = 0; i < codes.length; i++) if (codes[i] === torchCodes[i]) same++;
      let maxErr = 0;
      let signal = 0;
      let noise = 0;
      for (let i = 0; i < y.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(y[i] - torchAudio[i]));
        signal += torchAudio[i] ** 2;
        noise += (y[i] - torchAudio[i]) ** 2;
      }
      const snr = (10 * Math.log10(signal / Math.max(noise, 1e-30))).toFixed(1);
      accuracy[v.name] = `codes ${(100 * same / codes.length).toFixed(2)}% equal to PyTorch, audio max |err| ${maxErr.toExponential(1)} (SNR ${snr} dB)`;
    }
    const settled = async <T>(run: () => Promise<T>): Promise<T> => {
      await sleep(SETTLE_MS);
      return run();
    };
    for (let r = 0; r < rounds; r++) {
      times.torch.enc.push((await settled(() => torch.ask('encode'))).seconds);
      for (const v of variants) times[v.name].enc.push((await settled(() => timeRun(v.enc, audioFeed)))[0]);
      times.torch.dec.push((await settled(() => torch.ask('decode'))).seconds);
      for (const v of variants) times[v.name].dec.push((await settled(() => timeRun(v.dec, codesFeed)))[0]);
    }
    torch.stop();

    const te = median(times.torch.enc);
    const td = median(times.torch.dec);
    console.log(`\nWavTokenizer 75 tok/s full size, ${opt.seconds} s of speech, ${threads} thread(s), median of ${rounds} alternating rounds`);
    console.log(`PyTorch ${info.torch} (${info.threads} threads: OpenBLAS ${info.threads}, torch intra-op encode ${info.torchThreads.encode} / decode ${info.torchThreads.decode}): encode ${te.toFixed(3)} s, decode ${td.toFixed(3)} s`);
    for (const v of variants) {
      const e = median(times[v.name].enc);
      const d = median(times[v.name].dec);
      console.log(`${v.name}: encode ${e.toFixed(3)} s (${(te / e).toFixed(2)}x PyTorch), decode ${d.toFixed(3)} s (${(td / d).toFixed(2)}x PyTorch); ${accuracy[v.name]}`);
      await v.enc.release();
      await v.dec.release();
    }
  } finally {
    if (!opt.keep) rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
}

await main();
