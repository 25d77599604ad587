/**
 * Batch HTTP API, measured side by side in one run on the same files:
 *   1. concurrent uploads to POST /v1/encode (files/s, audio-hours per hour)
 *   2. the CLI (`node bin/tokstream.js encode`), the same concurrency, one process per file
 *   3. the codec pipeline in-process, one file after another (no HTTP, no batcher)
 *   4. fair share: latency of a real-time WebSocket stream alone, then beside looping bulk uploads
 *   5. bounded memory: RSS while one long WAV is uploaded chunked (never held whole)
 *
 *   npm run bench:http [-- --files 10 --seconds 12 --concurrency 4 --threads 2 --stream-seconds 10 --long-minutes 10 --chunk-frames N]
 */
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openAudio } from '../codec/audio-input.js';
import { CodecModel } from '../codec/model.js';
import { TokWriter } from '../codec/tokfile.js';
import { resolveServerConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { numberArg as arg } from './args.js';
import { percentile, realtimeStreamLatencies } from './stream-latency.js';


const FILES = arg('files', 10);
const SECONDS = arg('seconds', 12);
const CONCURRENCY = arg('concurrency', 4);
const THREADS = arg('threads', 2);
const STREAM_SECONDS = arg('stream-seconds', 10);
const CHUNK_FRAMES = arg('chunk-frames', 0); // 0: the server default (--http-chunk-frames)
const LONG_MINUTES = arg('long-minutes', 10);
const FORMATS = ['wav', 'mp3', 'flac', 'ogg', 'm4a'] as const;
const repo = resolve(new URL('..', import.meta.url).pathname, '..');
const work = mkdtempSync(join(tmpdir(), 'tokstream-bench-http-'));

const TEXTS = [
  'The quick brown fox jumps over the lazy dog.',
  'Batch compression turns long recordings into compact token files.',
  'Every upload is streamed in and every token file is streamed out.',
  'Real time streams must keep their latency while bulk jobs run beside them.',
  'Seven silver swans swam silently seaward at dawn.',
];

/** FILES files of SECONDS s of looped espeak speech, cycling through the input formats. */
function makeFiles(): { path: string; seconds: number }[] {
  const codec: Record<(typeof FORMATS)[number], string[]> = {
    wav: ['-c:a', 'pcm_s16le'],
    mp3: ['-c:a', 'libmp3lame', '-b:a', '128k'],
    flac: ['-c:a', 'flac'],
    ogg: ['-c:a', 'libopus', '-b:a', '64k'],
    m4a: ['-c:a', 'aac', '-b:a', '96k'],
  };
  return Array.from({ length: FILES }, (_, i) => {
    const ext = FORMATS[i % FORMATS.length];
    const speech = join(work, `speech-${i}.wav`);
    execFileSync('espeak-ng', ['-v', i % 2 ? 'en-us' : 'en', '-w', speech, TEXTS[i % TEXTS.length]]);
    const path = join(work, `input-${i}.${ext}`);
    const rate = ext === 'ogg' ? '48000' : '44100';
    execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-stream_loop', '-1', '-i', speech, '-t', String(SECONDS), '-ar', rate, '-ac', '2', ...codec[ext], path]);
    return { path, seconds: SECONDS };
  });
}

async function pool<T>(items: T[], workers: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

function rate(label: string, files: number, audioSec: number, wallSec: number): { filesPerSec: number; audioHoursPerHour: number } {
  const r = { filesPerSec: files / wallSec, audioHoursPerHour: audioSec / wallSec };
  console.log(`${label.padEnd(44)} ${wallSec.toFixed(2).padStart(7)} s  ${r.filesPerSec.toFixed(2).padStart(6)} files/s  ${r.audioHoursPerHour.toFixed(1).padStart(7)} audio-h/h`);
  return r;
}

const files = makeFiles();
const totalAudio = files.reduce((s, f) => s + f.seconds, 0);
const modelsDir = join(work, 'models');
execFileSync('mkdir', ['-p', modelsDir]);
symlinkSync(join(repo, 'models/default'), join(modelsDir, 'default'));

const config = resolveServerConfig({
  host: '127.0.0.1', port: 0, noAuth: true, logLevel: 'silent', modelsDir, intraOpThreads: THREADS, demo: false, maxAheadSec: 60, chunkFrames: CHUNK_FRAMES || undefined,
});
const server = await startServer(config);
const model = server.app.tokstream.registry.models.get('default')!;
console.log(`\n${FILES} files x ${SECONDS} s (${FORMATS.join('/')}), concurrency ${CONCURRENCY}, ${THREADS} intra-op threads, model ${model.name} ${model.manifest.version} on ${model.provider.toUpperCase()}\n`);

// 1. HTTP uploads (warm-up with one file first: the first ONNX runs allocate)
async function upload(path: string): Promise<number> {
  const res = await fetch(`${server.url}/v1/encode`, { method: 'POST', body: createReadStream(path) as unknown as BodyInit, duplex: 'half' } as RequestInit);
  const bytes = (await res.arrayBuffer()).byteLength;
  if (res.status !== 200) throw new Error(`upload of ${path}: HTTP ${res.status}`);
  return bytes;
}
await upload(files[0].path);
let t0 = performance.now();
await pool(files, CONCURRENCY, async (f) => void (await upload(f.path)));
const http = rate(`HTTP POST /v1/encode, ${CONCURRENCY} concurrent`, FILES, totalAudio, (performance.now() - t0) / 1000);

// 2. the CLI on the same files, same concurrency
const cliOut = join(work, 'cli-out');
execFileSync('mkdir', ['-p', cliOut]);
function cli(path: string, i: number): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(repo, 'bin/tokstream.js'), 'encode', path, '-o', join(cliOut, `${i}.tok`), '--models-dir', modelsDir, '--threads', String(THREADS)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? done() : fail(new Error(`CLI failed on ${path}: ${err}`))));
  });
}
t0 = performance.now();
await pool(files.map((f, i) => ({ f, i })), CONCURRENCY, ({ f, i }) => cli(f.path, i));
const cliRate = rate(`CLI encode, ${CONCURRENCY} processes at a time`, FILES, totalAudio, (performance.now() - t0) / 1000);

// 3. the same pipeline in-process, sequential (a separate session, like the CLI's)
const local = await CodecModel.load(join(repo, 'models/default'), { intraOpThreads: THREADS, interOpThreads: 1, log: () => {} });
t0 = performance.now();
for (const f of files) {
  const source = f.path.endsWith('.m4a') ? { path: f.path } : { stream: createReadStream(f.path) };
  const audio = await openAudio(source, { sampleRate: local.manifest.sampleRate });
  const m = local.manifest;
  const writer = new TokWriter({ modelName: m.name, modelSha256: local.hash, sampleRate: m.sampleRate, hopLength: m.hopLength, numCodebooks: m.numCodebooks, codebookSize: m.codebookSize, originalSampleRate: audio.sourceRate ?? m.sampleRate }, () => {});
  for await (const block of local.encodeStream(audio.pcm)) await writer.write(block);
  await writer.finish({ originalLength: audio.sourceSamples() });
}
const inproc = rate('in-process pipeline, sequential', FILES, totalAudio, (performance.now() - t0) / 1000);
await local.release();
console.log(`HTTP / CLI throughput: ${(http.audioHoursPerHour / cliRate.audioHoursPerHour).toFixed(2)}x   HTTP / in-process: ${(http.audioHoursPerHour / inproc.audioHoursPerHour).toFixed(2)}x`);

// 4. fair share: a real-time stream (80 ms chunks, paced by the clock), alone and beside bulk uploads
const streamPcm = (() => {
  const buf = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-stream_loop', '-1', '-i', join(work, 'speech-0.wav'), '-t', String(STREAM_SECONDS), '-ar', '24000', '-ac', '1', '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
})();
function realtimeStream(): Promise<number[]> {
  return realtimeStreamLatencies(server.url.replace('http', 'ws') + '/v1/stream', streamPcm, model.manifest.hopLength);
}
function showLatency(label: string, l: number[]): number {
  const p99 = percentile(l, 0.99);
  console.log(`${label.padEnd(44)} p50 ${percentile(l, 0.5).toFixed(0).padStart(4)} ms  p95 ${percentile(l, 0.95).toFixed(0).padStart(4)} ms  p99 ${p99.toFixed(0).padStart(4)} ms  max ${Math.max(...l).toFixed(0).padStart(4)} ms  (${l.length} packets)`);
  return p99;
}
console.log('');
const alone = showLatency('stream latency, alone', await realtimeStream());
let stop = false;
let bulkAudio = 0;
const bulkStart = performance.now();
const bulk = Array.from({ length: CONCURRENCY }, async (_, w) => {
  for (let i = w; !stop; i += CONCURRENCY) {
    const f = files[i % files.length];
    await upload(f.path);
    bulkAudio += f.seconds;
  }
});
await new Promise((r) => setTimeout(r, 500)); // let the bulk jobs reach the batcher
const loaded = showLatency(`stream latency, beside ${CONCURRENCY} looping uploads`, await realtimeStream());
const bulkWall = (performance.now() - bulkStart) / 1000;
stop = true;
await Promise.all(bulk);
console.log(`bulk throughput meanwhile: ${(bulkAudio / bulkWall).toFixed(1)} audio-h/h (alone: ${http.audioHoursPerHour.toFixed(1)});  stream p99 loaded / alone: ${(loaded / alone).toFixed(2)}x (chunk 80 ms)`);

// 5. bounded memory: one long 48 kHz stereo WAV, generated while it is uploaded (chunked, no length)
const longSamples = LONG_MINUTES * 60 * 48000;
const speech48 = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', join(work, 'speech-1.wav'), '-ar', '48000', '-ac', '2', '-f', 's16le', '-'], { maxBuffer: 1 << 26 });
function* longWav(): Generator<Buffer> {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + longSamples * 4, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(2, 22);
  header.writeUInt32LE(48000, 24);
  header.writeUInt32LE(48000 * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(longSamples * 4, 40);
  yield header;
  for (let left = longSamples * 4; left > 0; left -= speech48.length) yield speech48.subarray(0, Math.min(left, speech48.length));
}
const rssBefore = process.memoryUsage().rss;
let rssPeak = rssBefore;
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);
t0 = performance.now();
const longParts = longWav();
const body = new ReadableStream<Uint8Array>({
  pull(c) {
    const r = longParts.next();
    if (r.done) c.close();
    else c.enqueue(r.value);
  },
});
const longRes = await fetch(`${server.url}/v1/encode`, { method: 'POST', body, duplex: 'half' } as RequestInit);
let tokBytes = 0;
const longReader = longRes.body!.getReader();
for (let r = await longReader.read(); !r.done; r = await longReader.read()) tokBytes += r.value.length;
clearInterval(sampler);
const longWall = (performance.now() - t0) / 1000;
console.log(
  `\nlong upload: ${LONG_MINUTES} min 48 kHz stereo WAV, ${((longSamples * 4) / 2 ** 20).toFixed(0)} MiB sent chunked -> HTTP ${longRes.status}, ${(tokBytes / 1024).toFixed(0)} KiB .tok in ${longWall.toFixed(1)} s; ` +
    `process RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> peak ${(rssPeak / 2 ** 20).toFixed(0)} MiB (+${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MiB; server and client share this process)`,
);

await server.close();
rmSync(work, { recursive: true, force: true });
