import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CodecError } from './pure/errors.js';
import { floatToS16 } from './pcm.js';

/** Containers the decoder side can produce. */
export type OutputFormat = 'wav' | 'flac' | 'ogg' | 'mp3';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['wav', 'flac', 'ogg', 'mp3'];

export const OUTPUT_MEDIA_TYPES: Record<OutputFormat, string> = {
  wav: 'audio/wav',
  flac: 'audio/flac',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
};

export interface AudioOutputOptions {
  format: OutputFormat;
  /** Rate of the PCM given (the model's); the output keeps it. */
  sampleRate: number;
  /** Samples that will come, when known: a WAV header then states the true size. */
  totalSamples?: number;
  /** Lossy bitrate in bit/s (ogg/opus, mp3). */
  bitrate?: number;
  /** Abort (client went away): the encoder child is killed at once. */
  signal?: AbortSignal;
  /** Kill the encoder child after this long (default 10 min). */
  timeoutMs?: number;
}

const DEFAULT_BITRATE: Record<'ogg' | 'mp3', number> = { ogg: 48_000, mp3: 64_000 };

/** Streaming 16-bit mono WAV header; unknown length is written as 0xFFFFFFFF (read to end of stream). */
export function streamingWavHeader(sampleRate: number, samples?: number): Buffer {
  const h = Buffer.alloc(44);
  const data = samples === undefined ? 0xffffffff : Math.min(0xffffffff - 36, samples * 2);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(samples === undefined ? 0xffffffff : 36 + data, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(data, 40);
  return h;
}

/** Arguments of the encoder child; exported so tests can see the restrictions. */
export function ffmpegEncodeArgs(format: Exclude<OutputFormat, 'wav'>, sampleRate: number, bitrate?: number): string[] {
  const codec: Record<typeof format, string[]> = {
    flac: ['-c:a', 'flac', '-f', 'flac'],
    ogg: ['-c:a', 'libopus', '-b:a', String(bitrate ?? DEFAULT_BITRATE.ogg), '-f', 'ogg'],
    mp3: ['-c:a', 'libmp3lame', '-b:a', String(bitrate ?? DEFAULT_BITRATE.mp3), '-f', 'mp3'],
  };
  return [
    '-hide_banner', '-v', 'error',
    // the input is our own raw PCM on stdin: no other protocol or demuxer may be opened
    '-protocol_whitelist', 'pipe', '-format_whitelist', 's16le',
    '-f', 's16le', '-ar', String(sampleRate), '-ac', '1', '-i', 'pipe:0',
    '-map', '0:a:0', '-map_metadata', '-1', ...codec[format], 'pipe:1',
  ];
}

/**
 * Encodes mono float PCM to a container, streamed: WAV is written here, the
 * others by an ffmpeg child fed on stdin. Breaking out of the loop, an abort,
 * the timeout or a failing input kill the child.
 */
export async function* encodeAudioStream(pcm: AsyncIterable<Float32Array>, opts: AudioOutputOptions): AsyncGenerator<Buffer> {
  if (opts.format === 'wav') {
    yield streamingWavHeader(opts.sampleRate, opts.totalSamples);
    for await (const chunk of pcm) {
      if (opts.signal?.aborted) throw new CodecError('aborted', 'encoding aborted');
      if (chunk.length) yield floatToS16(chunk);
    }
    return;
  }
  yield* ffmpegEncode(pcm, opts.format, opts);
}

async function* ffmpegEncode(pcm: AsyncIterable<Float32Array>, format: Exclude<OutputFormat, 'wav'>, opts: AudioOutputOptions): AsyncGenerator<Buffer> {
  const child = spawn(process.env.FFMPEG_PATH ?? 'ffmpeg', ffmpegEncodeArgs(format, opts.sampleRate, opts.bitrate), {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString();
  });
  child.stdin.on('error', () => {}); // EPIPE when the child dies first: reported through its exit
  let spawnError: Error | undefined;
  child.on('error', (e) => (spawnError = e));
  const exited = once(child, 'close').catch(() => undefined);
  const kill = () => child.kill('SIGKILL');
  opts.signal?.addEventListener('abort', kill, { once: true });
  if (opts.signal?.aborted) kill();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, opts.timeoutMs ?? 600_000);
  let stopped = false;
  // Input is pumped while output is read, so neither pipe can fill up and stall the other.
  const pump = (async () => {
    for await (const chunk of pcm) {
      if (stopped) return;
      if (!chunk.length) continue;
      if (!child.stdin.write(floatToS16(chunk))) await Promise.race([once(child.stdin, 'drain'), exited]);
    }
    child.stdin.end();
  })();
  let inputError: unknown;
  pump.catch((e) => {
    inputError = e;
    kill();
  });
  try {
    for await (const out of child.stdout) yield out as Buffer;
    await exited;
    await pump.catch(() => undefined);
    if (inputError) throw inputError;
    if (opts.signal?.aborted) throw new CodecError('aborted', 'encoding aborted');
    if (timedOut) throw new CodecError('timeout', `ffmpeg ${format} encoder timed out`);
    // a failing encoder on our own PCM is a server fault, not the client's: a plain Error
    if (spawnError) throw new Error(`cannot run ffmpeg: ${spawnError.message}`);
    if (child.exitCode !== 0) throw new Error(`ffmpeg ${format} encoder failed (${child.exitCode ?? child.signalCode}): ${stderr.trim().split('\n')[0]}`);
  } finally {
    stopped = true;
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', kill);
    kill(); // no-op when it already exited
    child.stdout.destroy();
  }
}
