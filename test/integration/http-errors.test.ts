import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAudio } from '../../codec/audio-input.js';
import { encodeTok } from '../../codec/tokfile.js';
import { Authenticator } from '../../server/auth.js';
import { convertAudio, scratch, speechWav } from '../helpers/fixtures.js';
import { startTestServer } from '../helpers/stream-harness.js';
import { fetchBody, startApi, type TestApi } from '../helpers/http.js';

const TOK = 'application/vnd.tokstream.tok';
const LIMIT_BYTES = 200_000;
let api: TestApi;
let wav: string;
let mp3: string;

beforeAll(async () => {
  api = await startApi({ maxBodyBytes: LIMIT_BYTES, maxDurationSec: 30, maxConcurrentJobs: 2, retryAfterSec: 7 });
  wav = speechWav('Errors have codes.'); // ~1.3 s, well under the byte limit
  mp3 = convertAudio(wav, 'mp3', 44100, 1);
});
afterAll(async () => {
  await api?.close();
});

async function post(path: string, body: Uint8Array | string, headers: Record<string, string> = {}) {
  const res = await fetch(`${api.url}${path}`, { method: 'POST', body: typeof body === 'string' ? body : fetchBody(body), headers: { 'content-type': 'application/octet-stream', ...headers } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as { error: { code: string; message: string } } };
}

function expectError(r: { status: number; headers: Headers; json: () => { error: { code: string; message: string } } }, status: number, code: string) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  const body = r.json();
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
}

describe('limits', () => {
  it('413 when the declared body is over the byte limit', async () => {
    expectError(await post('/v1/encode', new Uint8Array(LIMIT_BYTES + 1)), 413, 'payload_too_large');
  });

  it('413 when a chunked upload (no length declared) grows over the byte limit', async () => {
    // a real 16-bit WAV header followed by more samples than the limit allows, sent without content-length
    const pcm = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=220:duration=3', '-ar', '48000', '-ac', '1', '-f', 'wav', '-'], { maxBuffer: 1 << 24 });
    expect(pcm.length).toBeGreaterThan(LIMIT_BYTES);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < pcm.length; i += 16384) c.enqueue(pcm.subarray(i, i + 16384));
        c.close();
      },
    });
    const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    const text = await res.text();
    expect(res.status, text).toBe(413);
    expect(JSON.parse(text).error.code).toBe('payload_too_large');
  });

  it('413 when the audio is longer than the duration limit (WAV header and compressed stream)', async () => {
    const small = await startApi({ maxDurationSec: 0.5 });
    try {
      for (const file of [wav, mp3]) {
        const res = await fetch(`${small.url}/v1/encode`, { method: 'POST', body: readFileSync(file) });
        expect(res.status).toBe(413);
        expect((await res.json()).error.code).toBe('limit_exceeded');
      }
    } finally {
      await small.close();
    }
  });

  it('503 with Retry-After once the concurrent job limit is reached, answered at the headers, before any body', async () => {
    // two uploads that send a few bytes and then stall hold both job slots
    const stalled = [0, 1].map(() => {
      const req = httpRequest(`${api.url}/v1/encode`, { method: 'POST', headers: { 'content-type': 'audio/mpeg', 'content-length': '100000' } });
      req.on('error', () => {});
      req.write(readFileSync(mp3).subarray(0, 2000));
      return req;
    });
    try {
      let r = await post('/v1/encode', readFileSync(wav));
      for (let i = 0; i < 50 && r.status !== 503; i++) {
        await new Promise((res) => setTimeout(res, 50)); // the stalled requests may still be on their way in
        r = await post('/v1/encode', readFileSync(wav));
      }
      expectError(r, 503, 'overloaded');
      expect(r.headers.get('retry-after')).toBe('7');
      expectError(await post('/v1/decode', new Uint8Array(10)), 503, 'overloaded');
      // headers only, declaring 50 MB that never come: the answer cannot have waited for the body
      const refusal = async () => {
        const socket = connect(Number(new URL(api.url).port), '127.0.0.1');
        socket.on('error', () => {});
        let got = '';
        socket.on('data', (d) => (got += d.toString('latin1')));
        socket.write('POST /v1/encode HTTP/1.1\r\nhost: x\r\ncontent-type: audio/wav\r\ncontent-length: 50000000\r\n\r\n');
        const answered = await new Promise<boolean>((done) => {
          const timer = setTimeout(() => done(false), 5000);
          socket.on('close', () => (clearTimeout(timer), done(true)));
          socket.on('data', () => got.includes('}') && (clearTimeout(timer), done(true)));
        });
        socket.destroy();
        return answered ? got : '';
      };
      const got = await refusal();
      expect(got).toMatch(/^HTTP\/1\.1 503/);
      expect(got).toMatch(/\r\nretry-after: 7\r\n/i);
      expect(got).toMatch(/\r\nconnection: close\r\n/i);
      expect(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, '')).error.code).toBe('overloaded');
    } finally {
      for (const req of stalled) req.destroy();
    }
    // slots are given back when the stalled clients go away
    let after = await post('/v1/encode', readFileSync(wav));
    for (let i = 0; i < 50 && after.status === 503; i++) {
      await new Promise((res) => setTimeout(res, 50));
      after = await post('/v1/encode', readFileSync(wav));
    }
    expect(after.status).toBe(200);
  });
});

describe('bad media', () => {
  it('415 for bytes that are not audio', async () => {
    expectError(await post('/v1/encode', 'this is a plain text file, not audio at all\n'.repeat(20)), 415, 'unsupported_media');
    const noise = new Uint8Array(50_000).map((_, i) => (i * 7919) % 251);
    expectError(await post('/v1/encode', noise), 415, 'unsupported_media');
    const png = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'color=c=red:s=32x32', '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', '-']);
    expectError(await post('/v1/encode', png), 415, 'unsupported_media');
  });

  it('422 for audio that is cut short, damaged or empty; the message names no server path', async () => {
    for (const ext of ['m4a', 'ogg', 'flac', 'mp3']) {
      const bytes = readFileSync(convertAudio(wav, ext, 44100, 1));
      // an mp4 cut in half loses its index; the others keep only their first bytes or frames
      const cut = ext === 'm4a' || ext === 'ogg' ? bytes.subarray(0, bytes.length >> 1) : bytes.subarray(0, 100);
      const r = await post('/v1/encode', cut);
      expectError(r, 422, 'undecodable_audio');
      expect(r.text).not.toContain('tokstream-spool');
    }
    const header = readFileSync(wav).subarray(0, 44);
    expectError(await post('/v1/encode', header), 422, 'invalid_audio');
    expectError(await post('/v1/encode', new Uint8Array(0)), 422, 'invalid_audio');
  });

  it('a media file without an audio stream is no_audio (422) on every path: raw, multipart, spooled mp4, piped mkv, CLI', async () => {
    const video = (ext: string, codec: string) => {
      const path = join(scratch, `http-video-only.${ext}`);
      execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=s=64x48:d=1:r=10', '-c:v', codec, '-pix_fmt', 'yuv420p', path]);
      return path;
    };
    const mp4 = video('mp4', 'mpeg4');
    const mkv = video('mkv', 'mpeg4');
    for (const path of [mp4, mkv]) {
      const r = await post('/v1/encode', readFileSync(path));
      expectError(r, 422, 'no_audio');
      expect(r.json().error.message).toMatch(/no audio stream/);
    }
    const form = new FormData();
    form.set('file', new Blob([readFileSync(mp4)]), 'clip.mp4');
    const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body: form });
    expect(res.status).toBe(422);
    expect((await res.json()).error.code).toBe('no_audio');
    // the codec's verdict, which the CLI and prep get from the same function
    await expect(openAudio({ path: mp4 }, { sampleRate: 24000 }).then(async (a) => { for await (const _ of a.pcm) void _; })).rejects.toMatchObject({ code: 'no_audio' });
    const cli = spawnSync(process.execPath, [new URL('../../bin/tokstream.js', import.meta.url).pathname, 'encode', mp4, '-o', join(scratch, 'http-video-only.tok')], { encoding: 'utf8', timeout: 60_000 });
    expect(cli.status, cli.stderr).toBe(3);
    expect(cli.stderr).toMatch(/no_audio/);
  });

  it('a malformed multipart body is the client\'s fault: 400 invalid_request, never 500', async () => {
    const m = api.model.manifest;
    const tok = await encodeTok(
      { modelName: m.name, modelSha256: api.model.hash, sampleRate: m.sampleRate, hopLength: m.hopLength, numCodebooks: 2, codebookSize: m.codebookSize, originalSampleRate: m.sampleRate },
      { numCodebooks: 2, numFrames: 400, codes: new Int32Array(800) },
      { originalLength: 400 * m.hopLength },
    );
    const upload: Record<string, Buffer> = { '/v1/encode': readFileSync(wav), '/v1/decode': Buffer.from(tok) };
    const head = '--XX\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n';
    for (const path of ['/v1/encode', '/v1/decode']) {
      const cases: [string, string][] = [
        // cut off (no closing boundary) early in the file, before any output could start
        ['multipart/form-data; boundary=XX', head + upload[path].subarray(0, path === '/v1/encode' ? 3000 : 20).toString('latin1')],
        ['multipart/form-data; boundary=XX', 'no boundary line anywhere in this body'],
        ['multipart/form-data; boundary=XX', '--XX\r\nthis is no part header\r\n'],
        ['multipart/form-data', head + 'RIFF'], // no boundary parameter
      ];
      for (const [type, body] of cases) {
        const r = await post(path, Buffer.from(body, 'latin1'), { 'content-type': type });
        expect(`${path} ${JSON.stringify(body.slice(0, 40))}: ${r.status} ${r.text}`).toMatch(/: 400 /);
        expectError(r, 400, 'invalid_request');
      }
    }
  });

  describe('hostile uploads that name local files are refused and leak nothing', () => {
    const passwd = readFileSync('/etc/passwd', 'utf8').split('\n')[0];
    const segment = join(scratch, 'http-hostile-seg.aac');
    const lists = (): Record<string, string> => ({
      'HLS playlist': `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\n${segment}\n#EXTINF:1.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n`,
      'ffconcat list': `ffconcat version 1.0\nfile '${segment}'\nfile '/etc/passwd'\n`,
      'bare m3u': `#EXTM3U\n${segment}\n/etc/passwd\n`,
      'concat protocol text': `concat:${segment}|/etc/passwd`,
    });
    beforeAll(() => {
      execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', wav, '-c:a', 'aac', segment]);
    });

    it('the HLS playlist is live: ffmpeg without restrictions, reading it by path, decodes the local file it names', () => {
      const list = join(scratch, 'http-hostile.m3u8');
      writeFileSync(list, lists()['HLS playlist'].replace(/#EXTINF:1.0,\nfile:\/\/\/etc\/passwd\n/, ''));
      const pcm = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', list, '-f', 'f32le', '-'], { maxBuffer: 1 << 26 });
      expect(pcm.length).toBeGreaterThan(10_000);
    });

    it.each(['HLS playlist', 'ffconcat list', 'bare m3u', 'concat protocol text'])('%s', async (name) => {
      const text = lists()[name];
      for (const contentType of ['application/vnd.apple.mpegurl', 'application/octet-stream']) {
        const r = await post('/v1/encode', text, { 'content-type': contentType });
        expect([415, 422]).toContain(r.status);
        expect(r.json().error.code).toMatch(/^(unsupported_media|undecodable_audio)$/);
        expect(r.text).not.toContain(passwd);
        expect(r.text).not.toContain('root:');
      }
      const form = new FormData();
      form.set('file', new Blob([text]), 'list.m3u8');
      const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body: form });
      const body = await res.text();
      expect([415, 422]).toContain(res.status);
      expect(body).not.toContain('root:');
    });
  });
});

describe('models, tokens and parameters', () => {
  let tokBytes: Uint8Array;
  beforeAll(async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/encode?codebooks=4', payload: readFileSync(wav), headers: { 'content-type': 'audio/wav' } });
    expect(res.statusCode).toBe(200);
    tokBytes = res.rawPayload;
  });

  it('400 for an unknown model, a codebook count the model lacks, or a bad parameter', async () => {
    expectError(await post('/v1/encode?model=nope', readFileSync(wav)), 400, 'model_not_found');
    // codebooks out of range is a bad parameter, whichever bound it misses (the model has 8)
    expectError(await post('/v1/encode?codebooks=9', readFileSync(wav)), 400, 'invalid_request');
    expectError(await post('/v1/encode?codebooks=0', readFileSync(wav)), 400, 'invalid_request');
    expectError(await post('/v1/encode?model=../etc', readFileSync(wav)), 400, 'invalid_request');
    expectError(await post('/v1/decode?format=aiff', tokBytes), 400, 'invalid_request');
    const form = new FormData();
    form.set('codebooks', 'lots');
    form.set('file', new Blob([readFileSync(wav)]), 'a.wav');
    const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('invalid_request');
  });

  it('400 when no loaded model wrote a .tok (model_not_found), or more codebooks are asked than it holds (invalid_request)', async () => {
    const h = api.model.manifest;
    const foreign = await encodeTok(
      { modelName: 'default', modelSha256: 'ab'.repeat(32), sampleRate: h.sampleRate, hopLength: h.hopLength, numCodebooks: 2, codebookSize: h.codebookSize, originalSampleRate: h.sampleRate },
      { numCodebooks: 2, numFrames: 10, codes: new Int32Array(20) },
      { originalLength: 3200 },
    );
    expectError(await post('/v1/decode', foreign, { 'content-type': TOK }), 400, 'model_not_found');
    expectError(await post('/v1/decode?codebooks=5', tokBytes, { 'content-type': TOK }), 400, 'invalid_request');
    expectError(await post('/v1/decode?model=other', tokBytes, { 'content-type': TOK }), 400, 'model_not_found');
  });

  it('422 for a truncated or corrupted .tok, 415-free: the body is still JSON', async () => {
    expectError(await post('/v1/decode', tokBytes.subarray(0, 40)), 422, 'invalid_tok');
    expectError(await post('/v1/decode', tokBytes.subarray(0, tokBytes.length - 30)), 422, 'invalid_tok');
    const corrupt = Uint8Array.from(tokBytes);
    corrupt[corrupt.length >> 1] ^= 0xff;
    expectError(await post('/v1/decode', corrupt), 422, 'invalid_tok');
    expectError(await post('/v1/decode', readFileSync(wav)), 422, 'invalid_tok');
  });

  it('406 when Accept names only formats it cannot produce', async () => {
    expectError(await post('/v1/decode', tokBytes, { 'content-type': TOK, accept: 'video/mp4, text/html' }), 406, 'invalid_request');
  });
});

describe('errors fastify produces itself have the documented shape (whole server)', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('unknown routes and methods: 404 not_found', async () => {
    for (const [method, path] of [['GET', '/nope'], ['POST', '/healthz'], ['GET', '/v1/encode'], ['DELETE', '/v1/models'], ['PUT', '/metrics']]) {
      const res = await fetch(`${server.url}${path}`, { method, ...(method === 'GET' ? {} : { body: 'x' }) });
      const text = await res.text();
      expectError({ status: res.status, headers: res.headers, json: () => JSON.parse(text) }, 404, 'not_found');
    }
  });

  it('a bad URL, a malformed request line and oversized headers', async () => {
    const bad = await fetch(`${server.url}/v1/models%`);
    const text = await bad.text();
    expectError({ status: bad.status, headers: bad.headers, json: () => JSON.parse(text) }, 400, 'invalid_request');
    const raw = (bytes: string) =>
      new Promise<string>((done) => {
        const socket = connect(server.port, '127.0.0.1');
        let got = '';
        socket.on('data', (d) => (got += d.toString('latin1')));
        socket.on('error', () => {});
        socket.on('close', () => done(got));
        socket.write(bytes);
      });
    for (const [bytes, status] of [['NOT HTTP AT ALL\r\n\r\n', 400], [`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`, 431]] as const) {
      const got = await raw(bytes);
      expect(got).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(got).toMatch(/content-type: application\/json/i);
      expect(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)).error.code).toBe('invalid_request');
    }
  });

  it('the server itself still answers JSON on its own routes', async () => {
    expect((await (await fetch(`${server.url}/healthz`)).json()).status).toBe('ok');
  });
});

describe('auth', () => {
  it('uses the stream server\'s API-key check: 401 without a key, 200 with one', async () => {
    const auth = new Authenticator({ apiKeys: ['test-key-123456'], noAuth: false, allowedOrigins: [] });
    const secured = await startApi({}, { authenticate: auth.hook() });
    try {
      for (const [method, path] of [['GET', '/v1/models'], ['POST', '/v1/encode'], ['POST', '/v1/decode']] as const) {
        const res = await fetch(`${secured.url}${path}`, { method, ...(method === 'POST' ? { body: readFileSync(wav) } : {}) });
        expect(res.status).toBe(401);
        expect((await res.json()).error.code).toBe('unauthorized');
      }
      const ok = await fetch(`${secured.url}/v1/encode`, { method: 'POST', body: readFileSync(wav), headers: { authorization: 'Bearer test-key-123456' } });
      expect(ok.status).toBe(200);
      await ok.arrayBuffer();
      const doc = await secured.app.inject({ url: '/docs/json' });
      expect(doc.json().components.securitySchemes.apiKey).toBeDefined();
    } finally {
      await secured.close();
    }
  });
});
