import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, watchErrors, type TestChromium } from '../helpers/chromium.js';
import { convertAudio, speechWav } from '../helpers/fixtures.js';
import { startTestServer } from '../helpers/stream-harness.js';

const KEY = 'demo-browser-key-1';
let server: Awaited<ReturnType<typeof startTestServer>>;
let chromium: TestChromium;
let browser: BrowserContext;

beforeAll(async () => {
  server = await startTestServer({ noAuth: false, apiKeys: [KEY], demo: true });
  // the fake microphone plays this file in a loop
  const wav = convertAudio(speechWav('Hello from a fake microphone. The tokens should flow live.'), 'wav', 48000, 1);
  chromium = await launchChromium(wav);
  browser = chromium.browser;
});
afterAll(async () => {
  await chromium?.close();
  await server?.close();
});

describe('browser demo page (headless Chromium, fake microphone)', () => {
  it('streams microphone audio to live tokens and decoded audio, with latency shown', async () => {
    const page = await browser.newPage();
    const consoleErrors = watchErrors(page);
    await page.goto(`${server.url}/demo/?token=${KEY}`);
    await page.waitForFunction(() => (document.getElementById('model') as HTMLSelectElement).options.length > 0);
    await page.fill('#codebooks', '4');
    await page.click('#start');
    // ~3 s of live audio: tokens and decoded audio must both be flowing
    await page.waitForFunction(() => {
      const d = (window as any).__demo;
      return d.state === 'failed' || (d.framesReceived >= 150 && d.decodedSamples >= 48000 && d.rtLatencyMs.length > 5);
    }, undefined, { timeout: 40_000 });
    const live = await page.evaluate(() => (window as any).__demo);
    expect(live.state).toBe('running');
    expect(live.errors).toEqual([]);
    expect(live.codes.every((c: number) => Number.isInteger(c) && c >= 0 && c < 1024)).toBe(true);
    expect(new Set(live.codes).size).toBeGreaterThan(5); // speech, not one code repeated
    expect(live.decodedEnergy).toBeGreaterThan(0);
    // latency figures exist and are shown on the page
    expect(live.encLatencyMs.every((x: number) => Number.isFinite(x) && x >= 0)).toBe(true);
    expect(await page.textContent('#rtLatency')).toMatch(/\d+ \/ \d+ ms/);
    expect(Number(await page.textContent('#frames'))).toBeGreaterThanOrEqual(150);
    const status = await page.textContent('#status');
    expect(status).toContain('4 codebooks');

    await page.click('#stop');
    await page.waitForFunction(() => (window as any).__demo.state !== 'running', undefined, { timeout: 20_000 });
    expect(await page.evaluate(() => (window as any).__demo.state)).toBe('stopped');
    for (let i = 0; i < 100 && server.app.tokstream.streams.connections.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(server.app.tokstream.streams.connections.size).toBe(0);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('the page reports a refused key instead of streaming', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/demo/?token=not-the-key-000`);
    await page.waitForFunction(() => (document.getElementById('model') as HTMLSelectElement).options.length > 0);
    await page.click('#start');
    await page.waitForFunction(() => (window as any).__demo.state === 'failed', undefined, { timeout: 20_000 });
    expect(await page.textContent('#status')).toContain('unauthorized');
    await page.close();
  });
});
