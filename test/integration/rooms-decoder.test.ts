import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecModel } from '../../codec/model.js';
import { sliceTokens } from '../../codec/stream-encoder.js';
import type { TokenBlock } from '../../codec/pure/types.js';
import { TokenStreamDecoder, loadDecoder, type DecodedAudio, type LocalDecoder, type OrtLike } from '../../clients/ts/decoder.js';
import { loadNodeDecoder } from '../../clients/ts/decoder-node.js';
import { DEFAULT_MODEL_DIR, readPcm, speechWav } from '../helpers/fixtures.js';
import { defaultOnlyModelsDir, startTestServer } from '../helpers/stream-harness.js';

const KEY = 'decoder-assets-key';
const ROOM_KEY = 'listen-only-key';
let server: Awaited<ReturnType<typeof startTestServer>>;
let model: CodecModel;
let tokens: TokenBlock;
let reference: Float32Array;
const CODEBOOKS = 4;

/** Models: the default one (with its stateful streaming decoder) and "windowed", the same graphs without `decoder.streaming`. */
function modelsDir(): string {
  const dir = defaultOnlyModelsDir();
  const windowed = join(dir, 'windowed');
  mkdirSync(windowed);
  const manifest = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'manifest.json'), 'utf8'));
  delete manifest.decoder.streaming;
  manifest.name = 'windowed';
  writeFileSync(join(windowed, 'manifest.json'), JSON.stringify(manifest));
  for (const f of [manifest.encoder.file, manifest.encoder.streaming.file, manifest.decoder.file]) symlinkSync(join(DEFAULT_MODEL_DIR, f), join(windowed, f));
  return dir;
}

beforeAll(async () => {
  server = await startTestServer({ noAuth: false, apiKeys: [KEY], roomKeys: [`${ROOM_KEY}:listen:lobby`], modelsDir: modelsDir() });
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
  const speech = readPcm(speechWav('Listeners decode the tokens themselves.'), 24000).subarray(0, 24000 * 2);
  tokens = await model.encode(speech, 24000, { codebooks: CODEBOOKS });
  reference = await model.decode(tokens); // the server's offline decode
});
afterAll(async () => {
  await model?.release();
  await server?.close();
});

/** Splits tokens into packets of `size` frames, as an encode stream sends them. */
function packets(all: TokenBlock, size: number): { firstFrame: number; tokens: TokenBlock }[] {
  const out = [];
  for (let f = 0; f < all.numFrames; f += size) out.push({ firstFrame: f, tokens: sliceTokens(all, f, Math.min(size, all.numFrames - f), all.numCodebooks) });
  return out;
}

/** Runs packets through a TokenStreamDecoder and lays the audio on one timeline. */
async function decodeAll(decoder: LocalDecoder, list: { firstFrame: number; tokens: TokenBlock }[], opts: { eager?: boolean; chunkFrames?: number } = {}) {
  const stream = new TokenStreamDecoder(decoder, { numCodebooks: CODEBOOKS, ...opts });
  const parts: DecodedAudio[] = [];
  for (const p of list) parts.push(...(await stream.push(p.firstFrame, p.tokens)));
  parts.push(...(await stream.finish()));
  const start = parts[0].firstSample;
  const out = new Float32Array(parts.reduce((s, p) => s + p.pcm.length, 0));
  let o = 0;
  for (const p of parts) {
    expect(p.firstSample).toBe(start + o); // contiguous: no sample twice, none missing
    out.set(p.pcm, o);
    o += p.pcm.length;
  }
  return { start, pcm: out, stream };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('client-side decoding (the server\'s stream decoder)', () => {
  it('onnxruntime-node in the client runs the stateful streaming decoder and equals the server\'s decode of the same packets', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tokstream-decoder-cache-'));
    const decoder = await loadNodeDecoder({ baseUrl: server.url, model: 'default', apiKey: ROOM_KEY, cacheDir });
    expect(decoder.fromCache).toBe(false);
    expect(decoder.stateful).toBe(true);
    // the streaming graph, and decoder.onnx for the weights it references
    const { decoder: spec } = model.manifest;
    expect(readdirSync(cacheDir).sort()).toEqual([`${spec.sha256}.onnx`, `${spec.streaming!.sha256}.onnx`].sort());
    const cases: [number, { eager?: boolean; chunkFrames?: number }][] = [[6, { eager: true }], [6, { eager: false, chunkFrames: 6 }], [6, { eager: true, chunkFrames: 20 }], [7, { eager: false, chunkFrames: 20 }]];
    for (const [size, opts] of cases) {
      const { start, pcm } = await decodeAll(decoder, packets(tokens, size), opts);
      expect(start).toBe(0);
      expect(pcm.length).toBe(tokens.numFrames * 320);
      expect(maxAbsDiff(pcm, reference)).toBeLessThan(1e-4);
    }
    // the second load comes from the folder cache; a damaged entry is fetched again
    expect((await loadNodeDecoder({ baseUrl: server.url, model: 'default', apiKey: ROOM_KEY, cacheDir })).fromCache).toBe(true);
    writeFileSync(join(cacheDir, `${spec.streaming!.sha256}.onnx`), 'garbage');
    const again = await loadNodeDecoder({ baseUrl: server.url, model: 'default', apiKey: ROOM_KEY, cacheDir });
    expect(again.fromCache).toBe(false);
    expect(maxAbsDiff((await decodeAll(again, packets(tokens, 6))).pcm, reference)).toBeLessThan(1e-4);
    await Promise.all([decoder.release(), again.release()]);
  });

  it('onnxruntime-web (wasm, the browser decoder) equals it within float tolerance', async () => {
    ortWeb.env.wasm.numThreads = 1;
    const decoder = await loadDecoder({ baseUrl: server.url, model: 'default', apiKey: KEY, ort: ortWeb as unknown as OrtLike });
    expect(decoder.stateful).toBe(true);
    const { pcm } = await decodeAll(decoder, packets(tokens, 6));
    // wasm and native kernels round differently; the audio is the same to ~1e-5 of full scale
    expect(maxAbsDiff(pcm, reference)).toBeLessThan(1e-3);
    await decoder.release();
  });

  it('a model without a streaming decoder decodes through the windowed decoder.onnx, to the same audio', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tokstream-decoder-cache-'));
    const decoder = await loadNodeDecoder({ baseUrl: server.url, model: 'windowed', apiKey: KEY, cacheDir });
    expect(decoder.stateful).toBe(false);
    expect(decoder.manifest.decoder.streaming).toBeUndefined();
    expect(readdirSync(cacheDir)).toEqual([`${model.manifest.decoder.sha256}.onnx`]);
    for (const opts of [{ eager: true }, { eager: false, chunkFrames: 20 }]) {
      expect(maxAbsDiff((await decodeAll(decoder, packets(tokens, 6), opts)).pcm, reference)).toBeLessThan(1e-4);
    }
    await decoder.release();
  });

  it('late joiners and dropped packets keep audio on the frame timeline', async () => {
    for (const name of ['default', 'windowed']) {
      const decoder = await loadNodeDecoder({ baseUrl: server.url, model: name, apiKey: KEY });
      expect(decoder.stateful).toBe(name === 'default');
      const list = packets(tokens, 6);
      // joins at packet 3; packets 7 and 8 are dropped (a slow listener)
      const heard = list.slice(3).filter((_, i) => i + 3 !== 7 && i + 3 !== 8);
      const { start, pcm, stream } = await decodeAll(decoder, heard);
      expect(start).toBe(18 * 320);
      expect(start + pcm.length).toBe(tokens.numFrames * 320);
      expect(stream.gaps).toBe(1);
      expect(stream.framesLost).toBe(12);
      // frames 18-42 end as a stream of their own would (stateful: with the final samples)...
      const before = await model.decode(sliceTokens(tokens, 18, 42 - 18, CODEBOOKS));
      expect(maxAbsDiff(pcm.subarray(0, (42 - 18) * 320), before)).toBeLessThan(1e-4);
      // ...the gap is silence, and audio resumes at frame 54 as a fresh stream would decode it
      const gap = pcm.subarray((42 - 18) * 320, (54 - 18) * 320);
      expect(gap.every((v) => v === 0)).toBe(true);
      const fresh = await model.decode(sliceTokens(tokens, 54, tokens.numFrames - 54, CODEBOOKS));
      expect(maxAbsDiff(pcm.subarray((54 - 18) * 320), fresh)).toBeLessThan(1e-4);
      // a resent (overlapping) packet is ignored where it was already decoded
      const s2 = new TokenStreamDecoder(decoder, { numCodebooks: CODEBOOKS });
      await s2.push(0, list[0].tokens);
      expect(await s2.push(0, list[0].tokens)).toEqual([]);
      expect(s2.nextFrame).toBe(6);
      await decoder.release();
    }
  });
});

describe('decoder assets over HTTP', () => {
  it('serves the manifest and decoder graphs with hash-based caching, to API and room keys only', async () => {
    const auth = { authorization: `Bearer ${ROOM_KEY}` };
    const m = await fetch(`${server.url}/v1/models/default/manifest.json`, { headers: auth });
    expect(m.status).toBe(200);
    const manifest = await m.json();
    expect(manifest.decoder.sha256).toMatch(/^[0-9a-f]{64}$/);
    const etag = m.headers.get('etag')!;
    expect((await fetch(`${server.url}/v1/models/default/manifest.json`, { headers: { ...auth, 'if-none-match': etag } })).status).toBe(304);

    const pinned = await fetch(`${server.url}/v1/models/default/decoder.onnx?sha256=${manifest.decoder.sha256}`, { headers: auth });
    expect(pinned.status).toBe(200);
    expect(pinned.headers.get('cache-control')).toContain('immutable');
    expect(pinned.headers.get('etag')).toBe(`"${manifest.decoder.sha256}"`);
    expect((await pinned.arrayBuffer()).byteLength).toBe(Number(pinned.headers.get('content-length')));
    const plain = await fetch(`${server.url}/v1/models/default/decoder.onnx`, { headers: { ...auth, 'if-none-match': `"${manifest.decoder.sha256}"` } });
    expect(plain.status).toBe(304);
    const stale = await fetch(`${server.url}/v1/models/default/decoder.onnx?sha256=${'0'.repeat(64)}`, { headers: auth });
    expect(stale.status).toBe(404);
    expect((await stale.json()).error.code).toBe('model_mismatch');
    // the stateful streaming decoder, served the same way; only graphs the manifest names
    const streamSha = manifest.decoder.streaming.sha256;
    const step = await fetch(`${server.url}/v1/models/default/decoder_stream.onnx?sha256=${streamSha}`, { headers: auth });
    expect(step.status).toBe(200);
    expect(step.headers.get('cache-control')).toContain('immutable');
    expect(step.headers.get('etag')).toBe(`"${streamSha}"`);
    expect(Buffer.from(await step.arrayBuffer()).equals(readFileSync(join(DEFAULT_MODEL_DIR, manifest.decoder.streaming.file)))).toBe(true);
    expect((await fetch(`${server.url}/v1/models/default/decoder_stream.onnx`, { headers: { ...auth, 'if-none-match': `"${streamSha}"` } })).status).toBe(304);
    const staleStep = await fetch(`${server.url}/v1/models/default/decoder_stream.onnx?sha256=${manifest.decoder.sha256}`, { headers: auth });
    expect(staleStep.status).toBe(404);
    expect((await staleStep.json()).error.code).toBe('model_mismatch');
    const none = await fetch(`${server.url}/v1/models/windowed/decoder_stream.onnx`, { headers: auth });
    expect(none.status).toBe(404);
    expect((await none.json()).error.code).toBe('not_found');
    for (const other of ['encoder.onnx', 'encoder_stream.onnx', 'REPORT.md']) expect((await fetch(`${server.url}/v1/models/default/${other}`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${server.url}/v1/models/default/decoder_stream.onnx`)).status).toBe(401);

    expect((await fetch(`${server.url}/v1/models/nope/manifest.json`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${server.url}/v1/models/default/manifest.json`)).status).toBe(401);
    expect((await fetch(`${server.url}/v1/models/default/decoder.onnx`, { headers: { authorization: 'Bearer wrong-key-123' } })).status).toBe(401);
  });

  it('serves the onnxruntime-web wasm backend, and nothing else from its folder', async () => {
    const version = (await import('onnxruntime-web')).env.versions.web;
    const wasm = await fetch(`${server.url}/vendor/onnxruntime-web/${version}/ort-wasm-simd-threaded.wasm`);
    expect(wasm.status).toBe(200);
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    expect(wasm.headers.get('cache-control')).toContain('immutable');
    expect(new Uint8Array(await wasm.arrayBuffer()).subarray(0, 4)).toEqual(new Uint8Array([0, 0x61, 0x73, 0x6d]));
    expect((await fetch(`${server.url}/vendor/onnxruntime-web/${version}/ort.wasm.min.mjs`)).status).toBe(200);
    expect((await fetch(`${server.url}/vendor/onnxruntime-web/${version}/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${server.url}/vendor/onnxruntime-web/${version}/ort.all.js`)).status).toBe(404);
  });
});
