/**
 * Peak memory of `tokstream encode` on a 60-minute file beside a 1-minute file.
 * Each encode runs in a fresh child process (the CLI's own code path), which
 * reports its peak RSS; the ratio shows whether memory grows with duration.
 *   npm run bench:memory [-- --minutes 60]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

async function child(input: string, output: string): Promise<void> {
  const { main } = await import('../cli/main.js');
  const code = await main(['encode', input, '-o', output]);
  // maxRSS is in KiB
  process.stdout.write(JSON.stringify({ code, maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
}

function makeInput(dir: string, minutes: number): string {
  const speech = join(dir, 'speech.wav');
  if (!existsSync(speech)) {
    execFileSync('espeak-ng', ['-v', 'en-us', '-w', speech, 'A long recording for the memory benchmark, spoken again and again, with numbers 1 2 3 4 5.']);
  }
  const out = join(dir, `long-${minutes}min.wav`);
  // loop speech and mix in low noise so no two windows are identical; 16 kHz stereo s16 WAV
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-stream_loop', '-1', '-i', speech, '-f', 'lavfi', '-i', 'anoisesrc=a=0.01:c=pink:r=16000',
    '-filter_complex', '[0:a]aresample=16000[s];[s][1:a]amix=inputs=2:duration=first,pan=stereo|c0=c0|c1=c0', '-t', String(minutes * 60), '-ar', '16000', '-c:a', 'pcm_s16le', out]);
  return out;
}

function measure(input: string, dir: string): { maxRssMiB: number; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [self, '--child', input, join(dir, 'out.tok')], { encoding: 'utf8' });
  const seconds = (performance.now() - t0) / 1000;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const parsed = JSON.parse(line) as { code: number; maxRssKiB: number };
  if (parsed.code !== 0) throw new Error(`encode failed: ${r.stderr}`);
  return { maxRssMiB: parsed.maxRssKiB / 1024, seconds };
}

async function parent(): Promise<void> {
  const minutesArg = process.argv.indexOf('--minutes');
  const long = minutesArg > 0 ? Number(process.argv[minutesArg + 1]) : 60;
  const dir = mkdtempSync(join(tmpdir(), 'tokstream-bench-mem-'));
  try {
    console.log(`generating 1-minute and ${long}-minute 16 kHz stereo WAV inputs in ${dir} ...`);
    const short = makeInput(dir, 1);
    const longFile = makeInput(dir, long);
    const a = measure(short, dir);
    const b = measure(longFile, dir);
    const mib = (p: string) => (statSync(p).size / 2 ** 20).toFixed(0);
    console.log('\ninput            file MiB  peak RSS MiB  wall s  x real time');
    console.log(`1 min            ${mib(short).padStart(8)}  ${a.maxRssMiB.toFixed(0).padStart(12)}  ${a.seconds.toFixed(1).padStart(6)}  ${(60 / a.seconds).toFixed(0).padStart(11)}`);
    console.log(`${long} min${' '.repeat(12 - String(long).length)}${mib(longFile).padStart(8)}  ${b.maxRssMiB.toFixed(0).padStart(12)}  ${b.seconds.toFixed(1).padStart(6)}  ${((long * 60) / b.seconds).toFixed(0).padStart(11)}`);
    console.log(`\npeak memory ratio ${long} min / 1 min: ${(b.maxRssMiB / a.maxRssMiB).toFixed(2)} (duration ratio ${long})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3], process.argv[4]);
else await parent();
