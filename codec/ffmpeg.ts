import ffmpeg from 'fluent-ffmpeg';
import type { Readable } from 'node:stream';
import { CodecError } from './errors.js';
import { FrameAssembler, toMonoFloat } from './pcm.js';

/**
 * Demuxers ffmpeg may use on untrusted input. Playlist and list formats (hls,
 * concat, ffconcat, image2 sequences, subtitles, ...) are absent on purpose: they
 * open further URLs or files named inside the input.
 */
export const AUDIO_DEMUXERS = [
  'wav', 'w64', 'mp3', 'flac', 'ogg', 'mov', 'mp4', 'm4a', 'matroska', 'webm', 'aac', 'aiff', 'caf', 'au', 'amr',
  'ac3', 'eac3', 'asf', 'wv', 'ape', 'tta', 'mpc', 'voc', 'dts', 'truehd',
];

export type AudioSource = { path: string } | { stream: Readable };

export interface FfmpegDecodeOptions {
  /** Output rate: ffmpeg resamples with soxr. */
  sampleRate: number;
  /** Kill the child after this long (default 10 min). */
  timeoutMs?: number;
  /** Abort (client went away): the child is killed at once. */
  signal?: AbortSignal;
}

/** What the ffmpeg child is given; exported so tests can see the restrictions. */
export function ffmpegDecodeArgs(source: AudioSource, sampleRate: number): { input: string | Readable; inputOptions: string[]; outputOptions: string[] } {
  const viaPipe = 'stream' in source;
  return {
    input: viaPipe ? source.stream : `file:${source.path}`,
    inputOptions: [
      '-nostdin',
      // the only way in is the one we opened: no file:, http:, concat:, subfile: from inside the input
      '-protocol_whitelist', viaPipe ? 'pipe' : 'file',
      '-format_whitelist', AUDIO_DEMUXERS.join(','),
    ].filter((o) => !(viaPipe && o === '-nostdin')),
    outputOptions: ['-map', '0:a:0', '-vn', '-sn', '-dn', '-ac', '1', '-af', 'aresample=resampler=soxr', '-ar', String(sampleRate), '-f', 'f32le', '-v', 'error'],
  };
}

/**
 * Decodes any audio ffmpeg reads to mono float32 at `sampleRate`, streamed:
 * the caller pulls chunks; breaking out of the loop, an abort or the timeout kill the child.
 */
export async function* ffmpegDecode(source: AudioSource, opts: FfmpegDecodeOptions): AsyncGenerator<Float32Array> {
  if ('path' in source && (source.path.startsWith('-') || source.path.includes('\0'))) {
    throw new CodecError('invalid_argument', `refusing suspicious path ${JSON.stringify(source.path)}`);
  }
  const { input, inputOptions, outputOptions } = ffmpegDecodeArgs(source, opts.sampleRate);
  let stderr = '';
  let failure: Error | undefined;
  let exited!: () => void;
  const exit = new Promise<void>((r) => (exited = r));
  const cmd = ffmpeg(input, { timeout: Math.ceil((opts.timeoutMs ?? 600_000) / 1000) })
    .inputOptions(inputOptions)
    .outputOptions(outputOptions)
    .on('stderr', (line: string) => {
      if (stderr.length < 4000) stderr += line + '\n';
    })
    .on('error', (e: Error) => {
      failure = e;
      exited();
    })
    .on('end', () => exited());
  const out = cmd.pipe() as Readable;
  const onAbort = () => cmd.kill('SIGKILL');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const asm = new FrameAssembler(4);
  let produced = false;
  try {
    for await (const chunk of out) {
      const whole = asm.push(chunk as Buffer);
      if (whole.length) {
        produced = true;
        yield toMonoFloat(whole, 'f32le', 1);
      }
    }
    await exit; // the exit status decides between "ended" and "failed"
    if (opts.signal?.aborted) throw new CodecError('aborted', 'decoding aborted');
    if (failure) throw describe(failure, stderr, produced);
    if (!produced) throw describe(new Error('no audio samples in input'), stderr, false);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    cmd.kill('SIGKILL'); // no-op when it already exited
    out.destroy();
  }
}

function firstLine(s: string): string {
  return s.trim().split('\n').find((l) => l.trim()) ?? '';
}

function describe(e: Error, stderr: string, produced: boolean): CodecError {
  const msg = firstLine(stderr) || e.message;
  if (/timeout/i.test(e.message)) return new CodecError('timeout', `ffmpeg timed out: ${msg}`);
  if (/SIGKILL/.test(e.message)) return new CodecError('aborted', 'ffmpeg was stopped');
  if (/not on whitelist|Protocol not on whitelist|Format .* is not on whitelist/i.test(stderr)) {
    return new CodecError('unsupported_media', `input refers to other files or a format not accepted for untrusted audio (${msg})`);
  }
  if (/Invalid data found|could not find codec|does not contain any stream|Output file #0 does not contain|matches no streams/i.test(stderr)) {
    return new CodecError('unsupported_media', `not an audio file ffmpeg can read (${msg})`);
  }
  return new CodecError('undecodable_audio', `${produced ? 'audio broke off' : 'cannot decode audio'}: ${msg}`);
}
