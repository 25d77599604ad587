import { createReadStream, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEncodeStream, type WebSocketCtor } from '../../clients/ts/client.js';
import { openAudio } from '../../codec/audio-input.js';
import { CodecModel } from '../../codec/model.js';
import { concatTokens } from '../../codec/stream-encoder.js';
import { readTok } from '../../codec/tokfile.js';
import { parseServerArgs } from '../../server/config.js';
import { DEFAULT_HTTP_API_CONFIG } from '../../server/http/config.js';
import { startServer } from '../../server/main.js';
import { DEFAULT_MODEL_DIR, convertAudio, readPcm, speechWav } from '../helpers/fixtures.js';
import { startTestServer } from '../helpers/stream-harness.js';

// The HTTP API inside the real server (server/app.ts): same auth as the streams, same model sessions and batcher.
const KEY = 'http-app-key-0001';
let server: Awaited<ReturnType<typeof startTestServer>>;
let model: CodecModel;

beforeAll(async () => {
  server = await startTestServer({ noAuth: false, apiKeys: [KEY], maxAheadSec: 60, maxBufferedSec: 60 });
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
});
afterAll(async () => {
  await server?.close();
  await model?.release();
});

function agreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / Math.max(1, a.length);
}

/** In-process tokens with the windows the server uses (window length shifts float rounding, so it must match). */
async function offlineTokens(pcm: AsyncIterable<Float32Array> | Float32Array[], chunkFrames: number) {
  const blocks = [];
  for await (const b of model.encodeStream(pcm, { chunkFrames })) blocks.push(b);
  return concatTokens(blocks);
}

describe('HTTP API in the server', () => {
  it('takes its limits from the server settings (TOKSTREAM_HTTP_* variables)', async () => {
    // no model needed: the size limit is enforced while the upload is read
    const empty = mkdtempSync(join(tmpdir(), 'tokstream-no-models-'));
    const config = parseServerArgs(['--host', '127.0.0.1', '--port', '0', '--models-dir', empty, '--no-demo', '--log-level', 'silent'],
      { TOKSTREAM_NO_AUTH: '1', TOKSTREAM_HTTP_MAX_BODY_BYTES: '1000' });
    const small = await startServer(config);
    try {
      const res = await fetch(`${small.url}/v1/encode`, { method: 'POST', body: new Uint8Array(5000) });
      expect(res.status).toBe(413);
      expect((await res.json()).error.message).toContain('1000-byte limit');
      expect(small.app.tokstream.config.maxBodyBytes).toBe(1000);
    } finally {
      await small.close();
    }
  });

  it('takes the API key wherever the streams take it, and refuses requests without one', async () => {
    const none = await fetch(`${server.url}/v1/models`);
    expect(none.status).toBe(401);
    expect((await none.json()).error.code).toBe('unauthorized');
    const wrong = await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer not-the-key-0000' } });
    expect(wrong.status).toBe(401);
    for (const headers of [{ authorization: `Bearer ${KEY}` }, { 'x-api-key': KEY }] as Record<string, string>[]) {
      const res = await fetch(`${server.url}/v1/models`, { headers });
      expect(res.status).toBe(200);
      expect((await res.json()).models[0].name).toBe('default');
    }
    const viaQuery = await fetch(`${server.url}/v1/encode?token=${KEY}`, { method: 'POST', body: readFileSync(speechWav('Key in the query.')) });
    expect(viaQuery.status).toBe(200);
    await viaQuery.arrayBuffer();
    // the operational endpoints and the docs stay open
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/docs/json`)).status).toBe(200);
  });

  it('a stream and concurrent uploads share the batcher; each gets its own tokens', async () => {
    const streamWav = speechWav('A live stream keeps going while files are uploaded beside it.');
    const uploads = [convertAudio(speechWav('The first upload is an mp3 file.'), 'mp3', 44100, 2), convertAudio(speechWav('The second upload is flac.'), 'flac', 16000, 1)];
    const pcm = readPcm(streamWav, 24000);
    const enc = await openEncodeStream({ url: server.wsUrl, apiKey: KEY, WebSocket: WebSocket as unknown as WebSocketCtor, sampleRate: 24000, format: 'f32le' });
    const collected = (async () => {
      const packets = [];
      for await (const p of enc) packets.push(p);
      return packets;
    })();
    const httpJobs = uploads.map(async (file) => {
      const res = await fetch(`${server.url}/v1/encode`, { method: 'POST', body: readFileSync(file), headers: { 'x-api-key': KEY } });
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(res.status, Buffer.from(bytes).toString()).toBe(200);
      return readTok(bytes);
    });
    for (let i = 0; i < pcm.length; i += 1920) enc.write(pcm.subarray(i, i + 1920));
    await enc.close();
    const packets = await collected;
    const streamed = concatTokens(packets.map((p) => ({ numCodebooks: p.tokens.numCodebooks, numFrames: p.tokens.numFrames, codes: Int32Array.from(p.tokens.codes) })));
    const offline = await offlineTokens([pcm], enc.ready.chunkFrames);
    // Under load the batcher stacks windows differently; float rounding depends on the batch, and a
    // near-tie in the residual quantizer can flip a rare code (and the later codebooks of that frame).
    expect(streamed.numFrames).toBe(offline.numFrames);
    expect(agreement(streamed.codes, offline.codes)).toBeGreaterThan(0.99);
    const toks = await Promise.all(httpJobs);
    for (const [i, tok] of toks.entries()) {
      const audio = await openAudio({ stream: createReadStream(uploads[i]) }, { sampleRate: 24000 });
      const expected = await offlineTokens(audio.pcm, DEFAULT_HTTP_API_CONFIG.chunkFrames);
      expect(tok.tokens.numFrames).toBe(expected.numFrames);
      expect(agreement(tok.tokens.codes, expected.codes)).toBeGreaterThan(0.99);
    }
    // both classes went through the one batcher of the model
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const count = (priority: string) => Number(new RegExp(`tokstream_queue_wait_seconds_count\\{model="default",priority="${priority}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    expect(count('realtime')).toBeGreaterThan(0);
    expect(count('bulk')).toBeGreaterThan(0);
  });
});
