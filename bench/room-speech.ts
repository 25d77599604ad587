/** What the room benchmarks share: looped speech at the model rate, and percentiles. */
import { execFileSync } from 'node:child_process';

/** `seconds` of speech at `rate` (espeak-ng, resampled by ffmpeg), looped. */
export function speech(seconds: number, rate: number): Float32Array {
  const text = 'Everyone in the room hears the speaker, decoded from a few kilobits of tokens per second. '.repeat(4);
  const wav = execFileSync('espeak-ng', ['--stdout', text], { maxBuffer: 1 << 28 });
  const raw = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', '-', '-ac', '1', '-ar', String(rate), '-f', 'f32le', '-'], { input: wav, maxBuffer: 1 << 28 });
  const pcm = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const out = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < out.length; i++) out[i] = pcm[i % pcm.length];
  return out;
}

/** The p-quantile (0..1) of xs; NaN when empty. */
export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}
