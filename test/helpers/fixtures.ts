import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Per-process scratch folder for generated audio. */
export const scratch = mkdtempSync(join(tmpdir(), 'tokstream-test-'));

export const DEFAULT_MODEL_DIR = new URL('../../models/default', import.meta.url).pathname;

/** Real synthetic speech from espeak-ng (22.05 kHz mono WAV), cached per text+voice. */
export function speechWav(text = 'The quick brown fox jumps over the lazy dog.', voice = 'en-us'): string {
  const out = join(scratch, `speech-${voice}-${hash(text)}.wav`);
  if (!existsSync(out)) execFileSync('espeak-ng', ['-v', voice, '-w', out, text]);
  return out;
}

/**
 * Converts a mono WAV into another container / rate / channel count with ffmpeg.
 * ext: wav | mp3 | flac | ogg (Vorbis) | opus (Ogg Opus, 8/12/16/24/48 kHz only) | m4a.
 * Stereo copies the signal to both channels at full scale (ffmpeg's -ac 2 would scale by 0.707).
 */
export function convertAudio(src: string, ext: string, rate: number, channels: number, extra: string[] = []): string {
  mkdirSync(scratch, { recursive: true });
  const out = join(scratch, `${hash(src)}-${rate}-${channels}-${hash(extra.join(' '))}.${ext === 'opus' ? 'opus.ogg' : ext}`);
  if (existsSync(out)) return out;
  const codec: Record<string, string[]> = {
    wav: ['-c:a', 'pcm_s16le'],
    mp3: ['-c:a', 'libmp3lame', '-b:a', '128k'],
    flac: ['-c:a', 'flac'],
    ogg: ['-c:a', 'libvorbis', '-q:a', '5'],
    opus: ['-c:a', 'libopus', '-b:a', '64k'],
    m4a: ['-c:a', 'aac', '-b:a', '96k'],
  };
  const layout = channels === 1 ? ['-ac', '1'] : ['-af', `pan=${channels}c|${Array.from({ length: channels }, (_, c) => `c${c}=c0`).join('|')}`];
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', src, '-ar', String(rate), ...layout, ...(codec[ext] ?? []), ...extra, out]);
  return out;
}

/** Reads any audio as mono float32 at `rate` via ffmpeg (reference path for comparisons). */
export function readPcm(path: string, rate: number): Float32Array {
  const buf = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-ac', '1', '-ar', String(rate), '-f', 'f32le', '-'], { maxBuffer: 1 << 30 });
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
}

/** The largest |a[i] - b[i]| over a's samples. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}
