import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The evaluation metrics are Python (numpy/scipy under Debian's /usr/bin/python3); their unit tests pin known
// behaviour (identical signals, white noise at known SNRs, invariances; the pitch tracker on tones, a glottal-pulse
// vowel and espeak-ng speech of known F0; the spectrogram PNG writer) and run the real Opus and Codec2 round
// trips the report compares against. This runs them and fails when they fail.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

describe('evaluation metrics and baselines (models/eval)', () => {
  it('passes its Python unit tests', () => {
    const result = spawnSync(
      '/usr/bin/python3',
      ['-m', 'unittest', 'discover', '-v', '-s', 'models/eval', '-p', 'test_*.py'],
      { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, timeout: 110_000 },
    );
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    expect(result.error, output).toBeUndefined();
    expect(result.status, output).toBe(0);
    const ran = /Ran (\d+) tests?/.exec(output);
    expect(Number(ran?.[1] ?? 0), output).toBeGreaterThanOrEqual(34);
    expect(output).toMatch(/\nOK\s*$/);
  });
});
