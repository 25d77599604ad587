import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAudio } from '../../codec/audio-input.js';
import { concatTokens } from '../../codec/stream-encoder.js';
import { readTok, type TokReadResult } from '../../codec/tokfile.js';
import { convertAudio, maxAbsDiff, readPcm, scratch, speechWav } from '../helpers/fixtures.js';
import { defaultOnlyModelsDir } from '../helpers/stream-harness.js';
import { fetchBody, startApi, type TestApi } from '../helpers/http.js';

const TOK = 'application/vnd.tokstream.tok';
let api: TestApi;
let wav: string;

beforeAll(async () => {
  api = await startApi({ chunkFrames: 100 });
  // ~3.6 s of speech: longer than one 100-frame window, so several batcher windows per job
  wav = speechWav('Streaming tokens over plain HTTP, one upload at a time, with bounded memory.');
});
afterAll(async () => {
  await api?.close();
});

/**
 * Tokens the same audio gets from the in-process codec pipeline (no HTTP, no batcher), read the way
 * the server reads it: piped, except mp4 which is spooled and read by path (ffmpeg trims mp3 padding
 * differently for files and pipes, so the reading mode matters).
 */
async function offlineTokens(path: string, codebooks = 8) {
  const source = path.endsWith('.m4a') ? { path } : { stream: createReadStream(path) };
  const audio = await openAudio(source, { sampleRate: api.model.manifest.sampleRate });
  const blocks = [];
  for await (const b of api.model.encodeStream(audio.pcm, { codebooks, chunkFrames: 100 })) blocks.push(b);
  return concatTokens(blocks, codebooks);
}

async function encodeOverSocket(body: Uint8Array, query = ''): Promise<{ tok: TokReadResult; bytes: Uint8Array }> {
  const res = await fetch(`${api.url}/v1/encode${query}`, { method: 'POST', body: fetchBody(body), headers: { 'content-type': 'application/octet-stream' } });
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect(res.status, Buffer.from(bytes).toString()).toBe(200);
  expect(res.headers.get('content-type')).toBe(TOK);
  return { tok: readTok(bytes), bytes };
}

function agreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / Math.max(1, a.length);
}

describe('POST /v1/encode', () => {
  const formats = ['wav', 'mp3', 'flac', 'ogg', 'm4a'] as const;
  for (const ext of formats) {
    it(`round-trips ${ext}: encoded over a real socket to the in-process tokens, decoded back to its duration`, async () => {
      const file = ext === 'wav' ? wav : convertAudio(wav, ext, ext === 'ogg' ? 48000 : 44100, 2);
      const { tok, bytes } = await encodeOverSocket(readFileSync(file));
      const expected = await offlineTokens(file);
      expect(tok.complete).toBe(true);
      expect(tok.header.modelName).toBe('default');
      expect(tok.header.modelSha256).toBe(api.model.hash);
      expect(tok.header.numCodebooks).toBe(8);
      expect(tok.tokens.numFrames).toBe(expected.numFrames);
      // same windows, batched differently: float rounding differs with the batch, and a near-tie in the
      // residual quantizer flips a rare code (and the later codebooks of its frame); another file's tokens would agree ~0.1%
      expect(agreement(tok.tokens.codes, expected.codes)).toBeGreaterThan(0.99);
      expect(tok.originalLength).toBeGreaterThan(0);
      const back = await api.app.inject({ method: 'POST', url: '/v1/decode', payload: Buffer.from(bytes), headers: { 'content-type': TOK } });
      expect(back.statusCode).toBe(200);
      const out = join(scratch, `http-roundtrip-${ext}.wav`);
      writeFileSync(out, back.rawPayload);
      // same length as the input (within 20 ms: mp3/aac priming is trimmed differently by file and pipe readers)
      expect(Math.abs(readPcm(out, 24000).length - readPcm(file, 24000).length)).toBeLessThan(480);
    });
  }

  it('takes multipart uploads with model and codebooks as form fields', async () => {
    const form = new FormData();
    form.set('model', 'default');
    form.set('codebooks', '3');
    form.set('file', new Blob([readFileSync(convertAudio(wav, 'flac', 16000, 1))]), 'speech.flac');
    const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain('speech.tok');
    const tok = readTok(new Uint8Array(await res.arrayBuffer()));
    expect(tok.header.numCodebooks).toBe(3);
    expect(tok.tokens.numFrames).toBeGreaterThan(200);
  });

  it('keeps the first N codebooks when asked (query), via inject', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/encode?codebooks=2', payload: readFileSync(wav), headers: { 'content-type': 'audio/wav' } });
    expect(res.statusCode).toBe(200);
    const two = readTok(res.rawPayload);
    const all = await offlineTokens(wav, 2);
    expect(two.header.numCodebooks).toBe(2);
    expect(agreement(two.tokens.codes, all.codes)).toBeGreaterThan(0.99);
  });

  it('streams the .tok out while the upload is still coming in', async () => {
    // 20 s of audio; the second half is sent only once .tok bytes have arrived
    const long = join(scratch, 'http-long.wav');
    execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-stream_loop', '5', '-i', wav, '-t', '20', '-ar', '24000', '-ac', '1', long]);
    const bytes = readFileSync(long);
    const half = Math.floor(bytes.length / 2);
    let sawOutputBeforeEnd = false;
    let release!: () => void;
    const gotBytes = new Promise<void>((r) => (release = r));
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(bytes.subarray(0, half));
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000));
        sawOutputBeforeEnd = (await Promise.race([gotBytes.then(() => 'ok'), timeout])) === 'ok';
        controller.enqueue(bytes.subarray(half));
        controller.close();
      },
    });
    const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(200);
    const parts: Uint8Array[] = [];
    for await (const chunk of res.body!) {
      parts.push(chunk);
      release();
    }
    expect(sawOutputBeforeEnd).toBe(true);
    const tok = readTok(Buffer.concat(parts));
    expect(tok.tokens.numFrames).toBe(1500);
  });
});

describe('POST /v1/decode', () => {
  let tokBytes: Uint8Array;
  let wavOut: Float32Array;
  beforeAll(async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/encode', payload: readFileSync(wav), headers: { 'content-type': 'audio/wav' } });
    tokBytes = res.rawPayload;
  });

  it('decodes to WAV by default, trimmed to the original length, equal to in-process decoding', async () => {
    const res = await fetch(`${api.url}/v1/decode`, { method: 'POST', body: fetchBody(tokBytes), headers: { 'content-type': TOK } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
    const out = join(scratch, 'http-decoded.wav');
    writeFileSync(out, Buffer.from(await res.arrayBuffer()));
    wavOut = readPcm(out, 24000);
    const tok = readTok(tokBytes);
    const expectedLength = Math.round((tok.originalLength! * 24000) / tok.header.originalSampleRate);
    expect(wavOut.length).toBe(expectedLength);
    const reference = await api.model.decode(tok.tokens, { chunkFrames: 100 });
    let maxErr = 0;
    for (let i = 0; i < wavOut.length; i++) maxErr = Math.max(maxErr, Math.abs(wavOut[i] - Math.max(-1, Math.min(1, reference[i]))));
    expect(maxErr).toBeLessThan(2 / 32768); // 16-bit rounding only
  });

  const outputs = [
    { how: 'format=flac', query: '?format=flac', accept: undefined, type: 'audio/flac', codec: 'flac' },
    { how: 'Accept: audio/flac', query: '', accept: 'audio/flac', type: 'audio/flac', codec: 'flac' },
    { how: 'format=opus', query: '?format=opus', accept: undefined, type: 'audio/ogg', codec: 'opus' },
    { how: 'Accept: audio/ogg', query: '', accept: 'text/html;q=0.9, audio/ogg', type: 'audio/ogg', codec: 'opus' },
    { how: 'format=mp3', query: '?format=mp3', accept: undefined, type: 'audio/mpeg', codec: 'mp3' },
    { how: 'Accept: audio/mpeg', query: '', accept: 'audio/mpeg', type: 'audio/mpeg', codec: 'mp3' },
  ];
  for (const o of outputs) {
    it(`produces ${o.codec} on ${o.how}`, async () => {
      const headers: Record<string, string> = { 'content-type': TOK, ...(o.accept ? { accept: o.accept } : {}) };
      const res = await fetch(`${api.url}/v1/decode${o.query}`, { method: 'POST', body: fetchBody(tokBytes), headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(o.type);
      const out = join(scratch, `http-decoded-${o.codec}-${o.query ? 'q' : 'a'}.${o.codec === 'opus' ? 'ogg' : o.codec}`);
      writeFileSync(out, Buffer.from(await res.arrayBuffer()));
      const probe = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,sample_rate,channels', '-of', 'json', out], { encoding: 'utf8' });
      const stream = JSON.parse(probe).streams[0];
      expect(stream.codec_name).toBe(o.codec);
      expect(stream.channels).toBe(1);
      const pcm = readPcm(out, 24000);
      // lossy encoders pad the ends; the length must still be the original's within 0.1 s
      expect(Math.abs(pcm.length - wavOut.length)).toBeLessThan(2400);
      if (o.codec === 'flac') {
        // lossless: the WAV decode's samples, up to one 16-bit step. Two decodes of one .tok can differ
        // by that much where the batcher grouped windows differently (onnxruntime's kernels are not
        // batch-invariant: about 1 sample in 1000 moves one step); a lossy codec misses by far more.
        expect(pcm.length).toBe(wavOut.length);
        expect(maxAbsDiff(pcm, wavOut)).toBeLessThan(1.5 / 32768);
      }
    });
  }

  it('decodes with fewer codebooks than the file holds (multipart, codebooks field)', async () => {
    const form = new FormData();
    form.set('codebooks', '2');
    form.set('file', new Blob([fetchBody(tokBytes)]), 'speech.tok');
    const res = await fetch(`${api.url}/v1/decode`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-tokstream-codebooks')).toBe('2');
    const out = join(scratch, 'http-decoded-2cb.wav');
    writeFileSync(out, Buffer.from(await res.arrayBuffer()));
    const pcm = readPcm(out, 24000);
    const tok = readTok(tokBytes);
    const two = { numCodebooks: 2, numFrames: tok.tokens.numFrames, codes: tok.tokens.codes.slice(0, 2 * tok.tokens.numFrames) };
    const reference = await api.model.decode(two, { chunkFrames: 100 });
    expect(pcm.length).toBe(wavOut.length);
    let maxErr = 0;
    for (let i = 0; i < pcm.length; i++) maxErr = Math.max(maxErr, Math.abs(pcm[i] - Math.max(-1, Math.min(1, reference[i]))));
    expect(maxErr).toBeLessThan(2 / 32768);
  });
});

describe('.tok files are interchangeable with the CLI (bin/tokstream.js)', () => {
  const modelsDir = defaultOnlyModelsDir();
  const cli = (...args: string[]) => execFileSync(process.execPath, [new URL('../../bin/tokstream.js', import.meta.url).pathname, ...args, '--models-dir', modelsDir, '--threads', '1'], { encoding: 'utf8', stdio: 'pipe' });

  it('a CLI-written .tok decodes over HTTP to the CLI\'s own decoding, and an HTTP-written one decodes with the CLI', async () => {
    const cliTok = join(scratch, 'http-cli.tok');
    const cliWav = join(scratch, 'http-cli.wav');
    cli('encode', wav, '-o', cliTok);
    cli('decode', cliTok, '-o', cliWav);
    const res = await fetch(`${api.url}/v1/decode`, { method: 'POST', body: readFileSync(cliTok) });
    expect(res.status).toBe(200);
    const httpWav = join(scratch, 'http-from-cli.wav');
    writeFileSync(httpWav, Buffer.from(await res.arrayBuffer()));
    const a = readPcm(cliWav, 24000);
    const b = readPcm(httpWav, 24000);
    expect(b.length).toBe(a.length);
    let maxErr = 0;
    for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
    expect(maxErr).toBeLessThan(2 / 32768);

    const enc = await fetch(`${api.url}/v1/encode`, { method: 'POST', body: readFileSync(wav) });
    const httpTok = join(scratch, 'http-made.tok');
    writeFileSync(httpTok, Buffer.from(await enc.arrayBuffer()));
    const out = join(scratch, 'http-made-cli.wav');
    cli('decode', httpTok, '-o', out);
    expect(readPcm(out, 24000).length).toBe(a.length);
  });
});

describe('GET /v1/models and /docs', () => {
  it('lists models with bitrates per codebook count and the execution provider', async () => {
    const res = await fetch(`${api.url}/v1/models`);
    expect(res.status).toBe(200);
    const body = await res.json();
    const m = body.models.find((x: { name: string }) => x.name === 'default');
    expect(m.provider).toBe('cpu');
    expect(m.hash).toBe(api.model.hash);
    expect(m.bitrates).toHaveLength(m.numCodebooks);
    expect(m.bitrates[0]).toEqual({ codebooks: 1, bitsPerSecond: 10 * m.frameRate });
    expect(m.manifest.encoder.leftContext).toBe(api.model.manifest.encoder.leftContext);
    expect(body.broken).toEqual([]);
  });

  it('serves an OpenAPI document with every route and Swagger UI', async () => {
    const doc = (await api.app.inject({ url: '/docs/json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(['/v1/decode', '/v1/encode', '/v1/models']);
    expect(Object.keys(doc.paths['/v1/encode'].post.requestBody.content)).toContain('multipart/form-data');
    expect(doc.paths['/v1/decode'].post.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['codebooks', 'format', 'model']);
    const ui = await api.app.inject({ url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger');
  });
});
