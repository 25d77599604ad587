/** The generated corpus of the prep benchmarks: short spoken files in several formats (espeak-ng, ffmpeg). */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { concat } from '../codec/resample.js';
import { openPcm } from '../prep/decode-ahead.js';

const run = promisify(execFile);

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog',
  'A journey of a thousand miles begins with a single step',
  'She sells sea shells by the sea shore while the sun goes down',
  'Tokens are small integers that stand for short pieces of sound',
  'Every corpus needs careful preparation before training starts',
];

/** `n` short spoken files: espeak-ng WAV (22.05 kHz), every third converted to MP3 / FLAC / 24 kHz WAV. */
export async function makeCorpus(dir: string, n: number): Promise<void> {
  const formats = ['wav', 'mp3', 'wav', 'flac', 'wav', 'wav24'];
  const one = async (i: number) => {
    const sub = join(dir, `spk${i % 10}`);
    mkdirSync(sub, { recursive: true });
    const raw = join(sub, `utt${String(i).padStart(4, '0')}.wav`);
    await run('espeak-ng', ['-s', String(140 + (i % 7) * 15), '-w', raw, `${SENTENCES[i % SENTENCES.length]}, item ${i}.`]);
    const fmt = formats[i % formats.length];
    if (fmt === 'wav') return;
    const args = { mp3: ['-c:a', 'libmp3lame', '-b:a', '64k'], flac: ['-c:a', 'flac'], wav24: ['-ar', '24000'] }[fmt]!;
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', raw, ...args, raw.replace(/\.wav$/, fmt === 'wav24' ? '.24k.wav' : `.${fmt}`)]);
    rmSync(raw);
  };
  const par = availableParallelism() * 2;
  for (let i = 0; i < n; i += par) await Promise.all(Array.from({ length: Math.min(par, n - i) }, (_, k) => one(i + k)));
}

/** CPU seconds of finished children (ffmpeg) from /proc; 0 where there is no /proc. */
export function childCpuSeconds(): number {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100; // cutime + cstime, in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** Every file decoded as prep decodes it alone, to mono float32 at `rate`, in memory. */
export async function decodeAll(paths: string[], rate: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const path of paths) {
    const parts: Float32Array[] = [];
    for await (const p of await openPcm(path, rate, 60_000)) parts.push(p);
    out.push(concat(parts));
  }
  return out;
}
