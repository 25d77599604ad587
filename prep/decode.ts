import { spawn } from 'node:child_process';
import { CodecError } from '../codec/errors.js';
import { ffmpegDecodeArgs } from '../codec/ffmpeg.js';
import { FrameAssembler, toMonoFloat } from '../codec/pcm.js';

/**
 * Decodes a file with an ffmpeg child (same restricted arguments as
 * codec/ffmpeg.ts), judged by ffmpeg's exit status. Spawned directly rather than
 * through fluent-ffmpeg, which reports "Output stream closed" for a complete
 * decode when the child exits more than 20 ms after closing its output, as
 * happens on a loaded machine: a corpus run must not fail good files at random.
 */
export async function* decodeFile(path: string, sampleRate: number, timeoutMs: number): AsyncGenerator<Float32Array> {
  const { input, inputOptions, outputOptions } = ffmpegDecodeArgs({ path }, sampleRate);
  const child = spawn('ffmpeg', [...inputOptions, '-i', input as string, ...outputOptions, 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString();
  });
  let spawnError: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      spawnError = e;
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const asm = new FrameAssembler(4);
  let produced = false;
  try {
    for await (const chunk of child.stdout) {
      const whole = asm.push(chunk as Buffer);
      if (whole.length) {
        produced = true;
        yield toMonoFloat(whole, 'f32le', 1);
      }
    }
    const code = await exited;
    if (spawnError) throw new CodecError('undecodable_audio', `cannot run ffmpeg: ${spawnError.message}`);
    if (timedOut) throw new CodecError('timeout', `ffmpeg took longer than ${timeoutMs / 1000} s (--ffmpeg-timeout-sec)`);
    if (code !== 0) throw describe(stderr, produced);
    if (!produced) throw new CodecError('undecodable_audio', `no audio samples in input${stderr ? `: ${firstLine(stderr)}` : ''}`);
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); // stopped early (end offset) or failed
  }
}

/** First stderr line, without the per-process addresses ffmpeg prints ("[mp3 @ 0x55d...]"), so reasons are reproducible. */
function firstLine(s: string): string {
  return (s.trim().split('\n').find((l) => l.trim()) ?? '').replace(/ @ 0x[0-9a-f]+/g, '');
}

function describe(stderr: string, produced: boolean): CodecError {
  const msg = firstLine(stderr) || 'ffmpeg failed';
  if (/not on whitelist/i.test(stderr)) return new CodecError('unsupported_media', `input refers to other files or a format not accepted (${msg})`);
  if (/Invalid data found|could not find codec|does not contain any stream|matches no streams/i.test(stderr)) {
    return new CodecError('unsupported_media', `not an audio file ffmpeg can read (${msg})`);
  }
  return new CodecError('undecodable_audio', `${produced ? 'audio broke off' : 'cannot decode audio'}: ${msg}`);
}
