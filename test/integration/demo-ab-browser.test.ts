import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, watchErrors, type TestChromium } from '../helpers/chromium.js';
import { convertAudio, readPcm, scratch, speechWav } from '../helpers/fixtures.js';
import { twoVersionsModelsDir } from '../helpers/model-versions.js';
import { spectralCorrelation } from '../helpers/spectral.js';
import { startTestServer } from '../helpers/stream-harness.js';

let server: Awaited<ReturnType<typeof startTestServer>>;
let chromium: TestChromium;
let browser: BrowserContext;

beforeAll(async () => {
  // two versions of the default model loaded: the shipped one kept as default-<version>, a 2.0.0 stand-in as default
  server = await startTestServer({ demo: true, modelsDir: twoVersionsModelsDir().dir });
  chromium = await launchChromium(convertAudio(speechWav('Unused microphone.'), 'wav', 48000, 1));
  browser = chromium.browser;
});
afterAll(async () => {
  await chromium?.close();
  await server?.close();
});

describe('A/B listening page /demo/ab/ (headless Chromium)', () => {
  it('shows a player for the reference and for every loaded version at 1.5 and 6 kbps, each playing real audio', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${server.url}/demo/ab/`);
    await page.waitForFunction(() => /clips|error|HTTP/.test(document.getElementById('status')!.textContent ?? ''));
    expect(await page.textContent('#status')).toBe('3 clips, 2 model versions');
    const headers = await page.$$eval('thead th', (ths) => ths.map((th) => th.textContent));
    expect(headers).toEqual([
      'clip', 'referenceoriginal',
      'default 1.0.01.5 kbps (2 codebooks), older version', 'default 1.0.06 kbps (8 codebooks), older version',
      'default 2.0.01.5 kbps (2 codebooks)', 'default 2.0.06 kbps (8 codebooks)',
    ]);
    const sources = await page.$$eval('audio', (els) => els.map((a) => (a as HTMLAudioElement).src));
    expect(sources).toHaveLength(3 * 5);

    // every source answers with audio the browser decodes, as long as the clip (4 s)
    const decoded = await page.evaluate(async (srcs) => {
      const ctx = new OfflineAudioContext(1, 1, 24000);
      const out = [];
      for (const src of srcs) {
        const res = await fetch(src);
        const type = res.headers.get('content-type');
        const audio = await ctx.decodeAudioData(await res.arrayBuffer());
        const pcm = audio.getChannelData(0);
        out.push({ src, status: res.status, type, seconds: audio.duration, rms: Math.sqrt(pcm.reduce((s, v) => s + v * v, 0) / pcm.length) });
      }
      return out;
    }, sources);
    for (const d of decoded) {
      expect(d.status, d.src).toBe(200);
      expect(d.type, d.src).toMatch(/^audio\/(flac|wav)/);
      expect(d.seconds, d.src).toBeGreaterThan(3.9);
      expect(d.seconds, d.src).toBeLessThan(4.1);
      expect(d.rms, d.src).toBeGreaterThan(0.01);
    }

    // a player really plays (autoplay is allowed in the test browser)
    await page.$eval('tbody audio[src$="/8/tts_000.wav"]', (a) => (a as HTMLAudioElement).play());
    await page.waitForFunction(() => (document.querySelector('tbody audio[src$="/8/tts_000.wav"]') as HTMLAudioElement).currentTime > 0.3);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the decodings are the clip coded by the model, not something else', async () => {
    const reference = readPcm(new URL('../../server/demo/ab/tts_007.flac', import.meta.url).pathname, 24000);
    for (const [codebooks, least] of [[8, 0.85], [2, 0.7]] as const) {
      const res = await fetch(`${server.url}/demo/ab/audio/1.0.0/${codebooks}/tts_007.wav`);
      expect(res.status).toBe(200);
      const path = join(scratch, `ab-${codebooks}.wav`);
      writeFileSync(path, Buffer.from(await res.arrayBuffer()));
      const decoded = readPcm(path, 24000);
      expect(Math.abs(decoded.length - reference.length)).toBeLessThanOrEqual(1);
      expect(spectralCorrelation(reference, decoded, 24000)).toBeGreaterThan(least);
    }
    const other = readPcm(new URL('../../server/demo/ab/tts_000.flac', import.meta.url).pathname, 24000);
    expect(spectralCorrelation(reference, other, 24000)).toBeLessThan(0.7);
  });

  it('404 for clips, versions or bitrates it does not offer', async () => {
    for (const path of ['audio/9.9.9/8/tts_000.wav', 'audio/1.0.0/3/tts_000.wav', 'audio/1.0.0/8/nope.wav', 'audio/nope.flac', 'audio/..%2Fab.html']) {
      const res = await fetch(`${server.url}/demo/ab/${path}`);
      expect(res.status, path).toBe(404);
    }
  });
});
