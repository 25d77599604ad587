import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resampleAll } from '../../codec/resample.js';
import { TokenStreamDecoder, type DecodedAudio } from '../../clients/ts/decoder.js';
import { loadNodeDecoder } from '../../clients/ts/decoder-node.js';
import { launchChromium, watchErrors, type TestChromium } from '../helpers/chromium.js';
import { DEFAULT_MODEL_DIR, convertAudio, speechWav } from '../helpers/fixtures.js';
import { spectralCorrelation } from '../helpers/spectral.js';
import { startTestServer } from '../helpers/stream-harness.js';

const SPEAK_KEY = 'speaker-room-key';
const LISTEN_KEY = 'listener-room-key';
let server: Awaited<ReturnType<typeof startTestServer>>;
let chromium: TestChromium;
let browser: BrowserContext;

beforeAll(async () => {
  server = await startTestServer({ noAuth: false, apiKeys: ['unused-api-key-1'], roomKeys: [`${SPEAK_KEY}:publish:demo`, `${LISTEN_KEY}:listen:demo`], demo: true });
  // the fake microphone plays this file in a loop
  const wav = convertAudio(speechWav('Hello from the speaker page. The listener decodes these tokens in its own browser.'), 'wav', 48000, 1);
  chromium = await launchChromium(wav);
  browser = chromium.browser;
});
afterAll(async () => {
  await chromium?.close();
  await server?.close();
});

describe('rooms demo (headless Chromium): one speaker, one listener decoding locally', () => {
  it('the listener plays the speaker\'s words, decoded in the browser, with latency and bandwidth shown', async () => {
    const listener = await browser.newPage();
    const listenerErrors = watchErrors(listener);
    await listener.goto(`${server.url}/demo/rooms/listener.html?room=demo&key=${LISTEN_KEY}&model=default`);
    // a graph of an older model version in the browser's cache: dropped when the current one is stored
    const graphUrl = (graph: string, sha: string) => `${server.url}/v1/models/default/${graph}?sha256=${sha}`;
    await listener.evaluate(async (url) => (await caches.open('tokstream-decoders-v1')).put(url, new Response('old graph')), graphUrl('decoder_stream.onnx', '0'.repeat(64)));
    await listener.click('#join');
    await listener.waitForFunction(() => ['joined', 'failed'].includes((window as any).__listener.state), undefined, { timeout: 60_000 });
    expect(await listener.evaluate(() => (window as any).__listener.state)).toBe('joined');
    // the page loaded the stateful streaming decoder and the graph holding its weights, nothing else
    const { decoder: spec } = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'manifest.json'), 'utf8'));
    const cached = await listener.evaluate(async () => (await (await caches.open('tokstream-decoders-v1')).keys()).map((r) => r.url));
    expect(cached.sort()).toEqual([graphUrl('decoder.onnx', spec.sha256), graphUrl('decoder_stream.onnx', spec.streaming.sha256)]);

    const speaker = await browser.newPage();
    const speakerErrors = watchErrors(speaker);
    await speaker.goto(`${server.url}/demo/rooms/speaker.html?room=demo&key=${SPEAK_KEY}&label=alice&codebooks=8`);
    // the chunk-size choice: 20, 40 or 80 ms; this speaker takes the low-latency one
    expect(await speaker.$$eval('#chunk option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(['20', '40', '80']);
    await speaker.selectOption('#chunk', '20');
    await speaker.click('#start');
    await speaker.waitForFunction(() => ['running', 'failed'].includes((window as any).__speaker.state), undefined, { timeout: 30_000 });
    expect(await speaker.evaluate(() => (window as any).__speaker.errors)).toEqual([]);
    expect(await speaker.evaluate(() => (window as any).__speaker.chunkMs)).toBe(20);
    // ~3 s of speech decoded by the listener
    await listener.waitForFunction(() => {
      const l = (window as any).__listener;
      return l.state === 'failed' || (l.publishers[1]?.decoded >= 3 * 24000 && l.latencyMs.length > 5);
    }, undefined, { timeout: 60_000 });
    await speaker.click('#stop');
    await speaker.waitForFunction(() => (window as any).__speaker.state !== 'running', undefined, { timeout: 30_000 });
    expect(await speaker.evaluate(() => (window as any).__speaker.state)).toBe('stopped');
    await listener.waitForFunction(() => (window as any).__listener.publishers[1].left !== undefined, undefined, { timeout: 60_000 });

    const heard = await listener.evaluate(() => ({ ...(window as any).__listenerDump(1), stats: (window as any).__listener }));
    const spoken = await speaker.evaluate(() => (window as any).__speakerDump());
    expect(heard.stats.errors).toEqual([]);
    expect(heard.info).toMatchObject({ publisher: 1, label: 'alice', codebooks: 8, model: 'default' });
    const hop = heard.info.hopLength;
    const rate = heard.info.modelSampleRate;

    // tokens only, from frame 0 (the listener was there first), no gaps, up to where the speaker stopped
    const frames: number = heard.left;
    expect(heard.gaps).toBe(0);
    expect(heard.packets[0].firstFrame).toBe(0);
    heard.packets.forEach((p: any, i: number) => i > 0 && expect(p.firstFrame).toBe(heard.packets[i - 1].firstFrame + heard.packets[i - 1].numFrames));
    // 20 ms = 1.5 frames: packets leave every 20 ms of audio with the whole frames in hand (the stream's last one: what close flushed)
    expect(heard.packets.slice(0, -1).every((p: any) => p.numFrames === 1 || p.numFrames === 2)).toBe(true);
    expect(heard.packets.at(-1).firstFrame + heard.packets.at(-1).numFrames).toBe(frames);
    // length: all of it decoded, and as long as what the speaker sent (the last frame is padded)
    const decoded = Float32Array.from(heard.pcm);
    expect(heard.firstSample).toBe(0);
    expect(decoded.length).toBe(frames * hop);
    const sentSec = spoken.samplesSent / spoken.sampleRate;
    expect(Math.abs(decoded.length / rate - sentSec)).toBeLessThan((2 * hop) / rate);

    // the same packets decoded in Node by onnxruntime-node, with the same stateful streaming decoder
    const node = await loadNodeDecoder({ baseUrl: server.url, model: 'default', apiKey: LISTEN_KEY });
    expect(node.stateful).toBe(true);
    const stream = new TokenStreamDecoder(node, { numCodebooks: 8 });
    const parts: DecodedAudio[] = [];
    for (const p of heard.packets) parts.push(...(await stream.push(p.firstFrame, { numCodebooks: p.numCodebooks, numFrames: p.numFrames, codes: Int32Array.from(p.codes) })));
    parts.push(...(await stream.finish()));
    const reference = new Float32Array(frames * hop);
    for (const p of parts) reference.set(p.pcm, p.firstSample);
    let maxDiff = 0;
    for (let i = 0; i < reference.length; i++) maxDiff = Math.max(maxDiff, Math.abs(reference[i] - decoded[i]));
    expect(maxDiff).toBeLessThan(1e-3); // wasm vs native float rounding only
    await node.release();

    // the words: the decoded spectrum over time follows the speaker's input (aligned by sample index)
    const input = await resampleAll(Float32Array.from(spoken.captured), spoken.sampleRate, rate);
    const n = Math.min(input.length, decoded.length);
    const aligned = spectralCorrelation(input.subarray(0, n), decoded.subarray(0, n), rate);
    const shift = Math.round(0.5 * rate); // control: same audio, half a second out of step
    const misaligned = spectralCorrelation(input.subarray(0, n - shift), decoded.subarray(shift, n), rate);
    // trained default model on espeak speech: 0.94-0.95 aligned, 0.24-0.28 misaligned (docs/protocol.md §10.6)
    expect(aligned).toBeGreaterThan(0.8);
    expect(aligned - misaligned).toBeGreaterThan(0.2);

    // what the page shows: mouth-to-ear latency and bandwidth
    const lat: number[] = heard.stats.latencyMs;
    expect(lat.every((x) => Number.isFinite(x) && x > 0 && x < 10_000)).toBe(true);
    expect(await listener.textContent('#latency')).toMatch(/^\d+ \/ \d+ ms$/); // p50 / p99
    const spokenLatency: number[] = spoken.tokensMs;
    expect(spokenLatency.length).toBeGreaterThan(10);
    expect(spokenLatency.slice(0, -1).every((x) => x > 0 && x < 10_000)).toBe(true); // the last packet: the tail close padded
    expect(await speaker.textContent('#latency')).toMatch(/^\d+ \/ \d+ ms$/);
    expect(heard.stats.kbps).toBeGreaterThan(1);
    // 8 codebooks x 10 bits x 75 Hz = 6 kbit/s of codes, sent as 16-bit codes (9.6 kbit/s), plus 24 header bytes per
    // packet: at 20 ms chunks (50 packets/s) 19.2 kbit/s, counted from the join, before the speaker started
    expect(heard.stats.kbps).toBeLessThan(20);
    expect(await listener.textContent('#bandwidth')).toMatch(/kbit\/s/);
    expect(await listener.textContent('#speed')).toMatch(/real time/);
    console.log(`rooms demo: ${(frames / heard.info.frameRate).toFixed(2)} s decoded in the browser, max |wasm - node| ${maxDiff.toExponential(2)}, spectral corr ${aligned.toFixed(3)} (misaligned ${misaligned.toFixed(3)}), mouth-to-ear median ${lat.sort((a, b) => a - b)[lat.length >> 1].toFixed(0)} ms (tokens arrive after ${heard.stats.arrivalMs.sort((a: number, b: number) => a - b)[heard.stats.arrivalMs.length >> 1].toFixed(0)} ms; ${heard.stats.skippedSec.toFixed(2)} s skipped to catch up), ${heard.stats.kbps.toFixed(1)} kbit/s, wasm decoder ${heard.stats.decoderXRT.toFixed(1)}x real time`);

    expect(listenerErrors).toEqual([]);
    expect(speakerErrors).toEqual([]);
    await speaker.close();
    await listener.click('#leave');
    await listener.waitForFunction(() => (window as any).__listener.state === 'left', undefined, { timeout: 10_000 });

    // a second visit loads the decoder graphs from the browser's cache
    await listener.goto(`${server.url}/demo/rooms/listener.html?room=demo&key=${LISTEN_KEY}&model=default`);
    await listener.click('#join');
    await listener.waitForFunction(() => ['joined', 'failed'].includes((window as any).__listener.state), undefined, { timeout: 60_000 });
    expect(await listener.evaluate(() => (window as any).__listener.fromCache)).toEqual({ default: true });
    await listener.close();
    for (let i = 0; i < 100 && server.app.tokstream.rooms.listeners.size + server.app.tokstream.rooms.publishers.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(server.app.tokstream.rooms.publishers.size).toBe(0);
  });

  it('a listen-only room key cannot speak: the page reports it', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/demo/rooms/speaker.html?room=demo&key=${LISTEN_KEY}`);
    await page.click('#start');
    await page.waitForFunction(() => (window as any).__speaker.state === 'failed', undefined, { timeout: 30_000 });
    expect(await page.textContent('#status')).toContain('unauthorized');
    await page.close();
  });
});
