import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export interface TestChromium {
  browser: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/**
 * Headless system Chromium whose fake microphone plays `micWav` in a loop, with a fresh profile
 * per run (playwright takes it as the persistent context's user-data-dir).
 */
export async function launchChromium(micWav: string): Promise<TestChromium> {
  const profile = mkdtempSync(join(tmpdir(), 'tokstream-chromium-'));
  try {
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless', '--no-sandbox', '--disable-gpu',
        '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${micWav}`,
        '--autoplay-policy=no-user-gesture-required',
        '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      ],
    });
    return {
      browser,
      close: async () => {
        await browser.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
}

/** Collects a page's console errors, uncaught exceptions and failed (4xx/5xx) responses. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('response', (r) => r.status() >= 400 && errors.push(`${r.status()} ${r.url()}`));
  return errors;
}
