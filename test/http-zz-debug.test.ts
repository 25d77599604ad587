import { readFileSync } from 'node:fs';
import { it } from 'vitest';
import { convertAudio, speechWav } from './helpers/fixtures.js';
import { startApi } from './http-support.js';
it('debug', async () => {
  const api = await startApi({});
  const wav = speechWav('Errors have codes.');
  const cases: Record<string, Uint8Array> = {};
  for (const ext of ['m4a', 'flac', 'ogg', 'mp3']) {
    const b = readFileSync(convertAudio(wav, ext, 44100, 1));
    cases[ext + '-half'] = b.subarray(0, b.length >> 1);
    cases[ext + '-head'] = b.subarray(0, 100);
    const c = Uint8Array.from(b); for (let i = 200; i < c.length; i += 7) c[i] ^= 0x5a; cases[ext + '-corrupt'] = c;
  }
  for (const [name, body] of Object.entries(cases)) {
    const r = await fetch(`${api.url}/v1/encode`, { method: 'POST', body });
    const t = await r.text();
    console.log(name, r.status, r.status === 200 ? t.length : t.slice(0, 200));
  }
  await api.close();
});
