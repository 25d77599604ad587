import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CodecError } from './pure/errors.js';
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

/**
 * A file, or piped bytes. `pcmWav`: the file is a PCM/float WAV whose header
 * was parsed already, so ffmpeg is told the demuxer and skips probing, which
 * otherwise costs ~7 ms of CPU per file (it gives the same samples).
 */
export type FileSource = { path: string; pcmWav?: boolean };
export type AudioSource = FileSource | { stream: Readable };

export interface FfmpegDecodeOptions {
  /** Output rate: ffmpeg resamples with soxr. */
  sampleRate: number;
  /** Kill the child after this long (default 10 min). */
  timeoutMs?: number;
  /** Abort (client went away): the child is killed at once. */
  signal?: AbortSignal;
}

/** Leading options of every decode: no console input, errors only on stderr. */
export const FFMPEG_QUIET = ['-nostdin', '-hide_banner', '-v', 'error'];

/**
 * The child's environment. Debian's libsoxr runs an OpenMP thread pool whose
 * threads spin in sched_yield; a mono stream has nothing to share out, so one
 * thread gives the same samples for 12-21% less CPU per decode (measured on
 * groups of short MP3, FLAC and WAV files).
 */
export function ffmpegEnv(): NodeJS.ProcessEnv {
  return { ...process.env, OMP_NUM_THREADS: '1' };
}

/** The ffmpeg command line for a decode; exported so tests can see the restrictions. */
export function ffmpegDecodeArgs(source: AudioSource, sampleRate: number): string[] {
  return [...FFMPEG_QUIET, ...ffmpegInputArgs(source), ...ffmpegOutputArgs(0, sampleRate, 'pipe:1')];
}

/**
 * One input with its restrictions. The whitelists are per-input options: a
 * command with several inputs must repeat them before every `-i`.
 */
export function ffmpegInputArgs(source: AudioSource): string[] {
  const viaPipe = 'stream' in source;
  return [
    // the only way in is the one we opened: no file:, http:, concat:, subfile: from inside the input
    '-protocol_whitelist', viaPipe ? 'pipe' : 'file',
    '-format_whitelist', AUDIO_DEMUXERS.join(','),
    ...(!viaPipe && source.pcmWav ? ['-f', 'wav', '-probesize', '32'] : []),
    // with several inputs each has a reader thread; a queue deep enough for a whole short file saves
    // most of their context switches (groups of 64 MP3: -25% CPU); the queue holds at most what a file has
    '-thread_queue_size', '1024',
    '-i', viaPipe ? 'pipe:0' : `file:${source.path}`,
  ];
}

/**
 * The first audio stream of input `input` as mono float32 at `sampleRate` (soxr), written to `target`
 * (e.g. pipe:1). `bulk`: written in 256 KiB blocks rather than a write per decoded frame (~4 KiB),
 * for whole-file decoding where nobody waits on the first samples: 15-20% less CPU in ffmpeg and in
 * the reader, the same bytes.
 */
export function ffmpegOutputArgs(input: number, sampleRate: number, target: string, bulk = false): string[] {
  const blocks = bulk ? ['-flush_packets', '0', '-blocksize', String(1 << 18)] : [];
  return ['-map', `${input}:a:0`, '-vn', '-sn', '-dn', '-ac', '1', '-af', 'aresample=resampler=soxr', '-ar', String(sampleRate), ...blocks, '-f', 'f32le', target];
}

/**
 * A running ffmpeg child (no shell): the start of its stderr kept for the error
 * message, killed on timeout or on demand (`stopped` says why), `exit` settled
 * once it is gone. `dispose()` stops the timer and kills it if still running.
 * Spawning may throw (e.g. too many open files); a missing binary shows in `exit`.
 */
export class FfmpegProcess<Why extends string> {
  readonly child: ChildProcess;
  readonly exit: Promise<{ code: number | null; error?: Error }>;
  stderr = '';
  stopped: Why | 'timeout' | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(args: string[], stdio: StdioOptions, timeoutMs: number) {
    this.child = spawn('ffmpeg', args, { stdio, env: ffmpegEnv() });
    this.child.stderr!.on('data', (d: Buffer) => {
      if (this.stderr.length < 4000) this.stderr += d.toString();
    });
    this.exit = new Promise((resolve) => {
      this.child.on('error', (error) => resolve({ code: null, error }));
      this.child.on('close', (code) => resolve({ code }));
    });
    this.timer = setTimeout(() => this.kill('timeout'), timeoutMs);
  }

  kill(why: Why | 'timeout'): void {
    this.stopped ??= why;
    this.child.kill('SIGKILL');
  }

  dispose(): void {
    clearTimeout(this.timer);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * Decodes any audio ffmpeg reads to mono float32 at `sampleRate`, streamed.
 * The child is spawned directly (no shell) and judged by its exit status;
 * breaking out of the loop, an abort or the timeout kill it. (fluent-ffmpeg,
 * tried first, reports a complete decode as failed when the child exits more
 * than 20 ms after closing its output, which happens on a loaded machine.)
 */
export async function* ffmpegDecode(source: AudioSource, opts: FfmpegDecodeOptions): AsyncGenerator<Float32Array> {
  if ('path' in source && source.path.includes('\0')) throw new CodecError('invalid_argument', 'path contains a NUL byte');
  const viaPipe = 'stream' in source;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const ff = new FfmpegProcess<'aborted'>(ffmpegDecodeArgs(source, opts.sampleRate), [viaPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'], timeoutMs);
  if (viaPipe && ff.child.stdin) {
    // ffmpeg may stop reading early (an error, or all it needs): a broken pipe there is not our failure
    pipeline(source.stream, ff.child.stdin).catch(() => {});
  }
  const onAbort = () => ff.kill('aborted');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const asm = new FrameAssembler(4);
  let produced = false;
  try {
    for await (const chunk of ff.child.stdout!) {
      const whole = asm.push(chunk as Buffer);
      if (whole.length) {
        produced = true;
        yield toMonoFloat(whole, 'f32le', 1);
      }
    }
    const { code, error } = await ff.exit;
    if (ff.stopped === 'aborted') throw new CodecError('aborted', 'decoding aborted');
    if (ff.stopped === 'timeout') throw new CodecError('timeout', `ffmpeg took longer than ${timeoutMs / 1000} s`);
    if (error) throw new CodecError('undecodable_audio', `cannot run ffmpeg: ${error.message}`);
    if (code !== 0 || !produced) throw describe(ff.stderr, produced);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    ff.dispose(); // the caller stopped early, or it failed
    if (viaPipe) source.stream.destroy();
  }
}

/** First stderr line without the per-process addresses ffmpeg prints ("[mp3 @ 0x55d...]"), so reasons are reproducible. */
export function firstLine(s: string): string {
  return (s.trim().split('\n').find((l) => l.trim()) ?? '').replace(/ @ 0x[0-9a-f]+/g, '');
}

function describe(stderr: string, produced: boolean): CodecError {
  const msg = firstLine(stderr) || 'no audio samples in input';
  if (/not on whitelist/i.test(stderr)) {
    return new CodecError('unsupported_media', `input refers to other files or a format not accepted for untrusted audio (${msg})`);
  }
  // the container was read, it just holds no audio stream for `-map 0:a:0` to take
  if (/Stream map '\d+:a:0' matches no streams/.test(stderr)) {
    return new CodecError('no_audio', 'the file holds no audio stream (video or other streams only)');
  }
  if (/Invalid data found|could not find codec|does not contain any stream|Output file #0 does not contain/i.test(stderr)) {
    return new CodecError('unsupported_media', `not an audio file ffmpeg can read (${msg})`);
  }
  return new CodecError('undecodable_audio', `${produced ? 'audio broke off' : 'cannot decode audio'}: ${msg}`);
}
