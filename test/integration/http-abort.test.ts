import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTok } from '../../codec/tokfile.js';
import { convertAudio, scratch, speechWav } from '../helpers/fixtures.js';
import { fetchBody, ffmpegChildren, startApi, waitFor, type TestApi } from '../helpers/http.js';

let api: TestApi;
let spoolDir: string;
let speech20s: string;

beforeAll(async () => {
  spoolDir = mkdtempSync(join(scratch, 'http-spool-'));
  api = await startApi({ maxConcurrentJobs: 1, spoolDir });
  speech20s = join(scratch, 'http-abort-20s.wav');
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-stream_loop', '10', '-i', speechWav(), '-t', '20', '-ac', '1', speech20s]);
});
afterAll(async () => {
  await api?.close();
});

function encoded(ext: 'mp3' | 'm4a'): Buffer {
  return readFileSync(convertAudio(speech20s, ext, 44100, 1));
}

/** Sends the headers and the first `fraction` of the body over a raw socket, then leaves the upload hanging. */
function partialUpload(path: string, body: Buffer, fraction: number, target: TestApi = api, contentType = 'application/octet-stream') {
  const { port } = new URL(target.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  const received: Buffer[] = [];
  socket.on('data', (d) => received.push(d));
  socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${contentType}\r\ncontent-length: ${body.length}\r\n\r\n`);
  socket.write(body.subarray(0, Math.floor(body.length * fraction)));
  return { socket, received };
}

/** The server is idle again: a job slot is free (maxConcurrentJobs is 1) and the batcher holds nothing. */
async function expectServerIdle(): Promise<void> {
  const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body: readFileSync(speechWav()) });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  const s = api.batcher.stats();
  expect(s.queuedBulk + s.queuedRealtime).toBe(0);
}

describe('client aborts', () => {
  it('an upload aborted midway leaves no ffmpeg child behind', async () => {
    expect(ffmpegChildren()).toEqual([]);
    const { socket } = partialUpload('/v1/encode', encoded('mp3'), 0.4);
    // the decoder child is really there while the upload hangs...
    expect(await waitFor(() => ffmpegChildren().length === 1, 10_000)).toBe(true);
    socket.destroy();
    // ...and gone once the client is
    expect(await waitFor(() => ffmpegChildren().length === 0, 5_000)).toBe(true);
    await expectServerIdle();
  });

  it('a client that hangs up while the .tok is streaming back leaves no ffmpeg child behind', async () => {
    const { socket, received } = partialUpload('/v1/encode', encoded('mp3'), 0.8);
    // the response has started (status line + first .tok bytes) while the upload is still open
    expect(await waitFor(() => Buffer.concat(received).includes('\r\n\r\n'), 15_000)).toBe(true);
    expect(Buffer.concat(received).toString('latin1')).toMatch(/^HTTP\/1\.1 200/);
    expect(ffmpegChildren().length).toBe(1);
    socket.destroy();
    expect(await waitFor(() => ffmpegChildren().length === 0, 5_000)).toBe(true);
    await expectServerIdle();
  });

  it('an mp4 upload aborted while spooling leaves neither a child nor a spool file; a finished one leaves no spool file', async () => {
    const m4a = encoded('m4a');
    const { socket } = partialUpload('/v1/encode', m4a, 0.5);
    expect(await waitFor(() => readdirSync(spoolDir).length === 1, 10_000)).toBe(true);
    socket.destroy();
    expect(await waitFor(() => readdirSync(spoolDir).length === 0, 5_000)).toBe(true);
    expect(ffmpegChildren()).toEqual([]);
    const res = await fetch(`${api.url}/v1/encode`, { method: 'POST', body: fetchBody(m4a) });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(await waitFor(() => readdirSync(spoolDir).length === 0, 5_000)).toBe(true);
  });

  it('a download aborted midway kills the FLAC/MP3 encoder child', async () => {
    // 60 s of arbitrary codes: decoding yields noise, which FLAC cannot shrink much, so the response outgrows socket buffers
    const m = api.model.manifest;
    const frames = 60 * (m.sampleRate / m.hopLength);
    const codes = Int32Array.from({ length: 8 * frames }, (_, i) => (i * 2654435761) % m.codebookSize >>> 0);
    const tok = await encodeTok(
      { modelName: m.name, modelSha256: api.model.hash, sampleRate: m.sampleRate, hopLength: m.hopLength, numCodebooks: 8, codebookSize: m.codebookSize, originalSampleRate: m.sampleRate },
      { numCodebooks: 8, numFrames: frames, codes },
      { originalLength: frames * m.hopLength },
    );
    for (const format of ['flac', 'mp3']) {
      const done = new Promise<void>((resolve, reject) => {
        const req = httpRequest(`${api.url}/v1/decode?format=${format}`, { method: 'POST', headers: { 'content-type': 'application/vnd.tokstream.tok' } }, (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', () => {
            // the encoder child is running while the body streams...
            expect(ffmpegChildren().length).toBe(1);
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => {});
        req.on('close', () => resolve());
        req.end(tok);
        setTimeout(() => reject(new Error('no response bytes')), 20_000);
      });
      await done;
      // ...and killed when the client goes
      expect(await waitFor(() => ffmpegChildren().length === 0, 5_000)).toBe(true);
      await expectServerIdle();
    }
  });
});

describe('abort logging', () => {
  it('every kind of client abort is one info line with a reason: no warning, no error, no stack trace', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
    const logged = await startApi({ maxConcurrentJobs: 8, spoolDir }, {}, { logger: { level: 'debug', stream } });
    try {
      const mp3 = encoded('mp3');
      const wav = readFileSync(speech20s);
      const m4a = encoded('m4a');
      const boundary = 'AbortBoundary';
      const form = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\nContent-Type: audio/mpeg\r\n\r\n`),
        mp3,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      // uploads cut at different points: right after the headers, while ffmpeg decodes, while WAV is read in-process,
      // while an mp4 is spooled, inside a multipart file part, and after the .tok response has started
      const cuts: [Buffer, number, string?][] = [
        [mp3, 0], [mp3, 0.4], [wav, 0.3], [wav, 0.9], [m4a, 0.5], [form, 0.5, `multipart/form-data; boundary=${boundary}`], [mp3, 0.8],
      ];
      let aborts = 0;
      for (const [body, fraction, type] of cuts) {
        const { socket } = partialUpload('/v1/encode', body, fraction, logged, type);
        await new Promise((r) => setTimeout(r, 400)); // the server has the request and works on it when the client goes
        socket.destroy();
        aborts++;
      }
      // a download cut after its first bytes
      const tok = await logged.app.inject({ method: 'POST', url: '/v1/encode', payload: readFileSync(speechWav()), headers: { 'content-type': 'audio/wav' } });
      expect(tok.statusCode).toBe(200);
      for (const format of ['wav', 'flac']) {
        await new Promise<void>((resolve) => {
          const req = httpRequest(`${logged.url}/v1/decode?format=${format}`, { method: 'POST' }, (res) => res.once('data', () => req.destroy()));
          req.on('error', () => {});
          req.on('close', () => resolve());
          req.end(tok.rawPayload);
        });
        aborts++;
      }
      expect(await waitFor(() => ffmpegChildren().length === 0, 10_000)).toBe(true);
      expect(await waitFor(() => lines.filter((l) => l.msg === 'request aborted by the client').length >= aborts - 1, 10_000)).toBe(true);
      const loud = lines.filter((l) => (l.level as number) >= 40);
      expect(loud, JSON.stringify(loud.slice(0, 3))).toEqual([]);
      expect(lines.filter((l) => JSON.stringify(l).includes('    at '))).toEqual([]); // no stack anywhere
      const logs = lines.filter((l) => l.msg === 'request aborted by the client');
      for (const l of logs) {
        expect(l.level).toBe(30);
        expect(l.reason).toMatch(/^client closed the connection (during the upload|while the response was being sent)$/);
      }
      // the download aborts say so; the cut made right after the headers may be answered before its job starts
      expect(logs.filter((l) => /response/.test(l.reason as string)).length).toBeGreaterThanOrEqual(2);
      expect(logs.length).toBeGreaterThanOrEqual(aborts - 1);
    } finally {
      await logged.close();
    }
  });
});
