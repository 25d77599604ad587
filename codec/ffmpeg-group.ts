import type { Readable } from 'node:stream';
import { firstNonFinite } from './pcm.js';
import { FFMPEG_QUIET, FfmpegProcess, ffmpegInputArgs, ffmpegOutputArgs, firstLine, type FileSource } from './ffmpeg.js';

export interface GroupDecodeOptions {
  /** Output rate (soxr, as in ffmpegDecode). */
  sampleRate: number;
  /** Kill the process after this long; the group then fails as a whole. */
  timeoutMs: number;
  /** Decoded bytes held at most, all files together: a small file can hold hours of compressed silence. */
  maxOutputBytes: number;
  /** false: a write per decoded frame instead of 256 KiB blocks (the same bytes; for benchmarks). */
  blockWrites?: boolean;
}

export type GroupResult =
  | { ok: true; pcm: Float32Array[] }
  /**
   * `culprit`: the file ffmpeg named in its error, where it named one (the
   * others may well be fine); `overLimit`: stopped at maxOutputBytes.
   */
  | { ok: false; reason: string; culprit?: number; overLimit?: boolean };

/**
 * Decodes several files in ONE ffmpeg process: input i (with the same
 * protocol and format whitelists as a single decode) goes through the same
 * filters as ffmpegDecode to its own pipe, fd 3 + i. Starting Debian's ffmpeg
 * costs ~75 ms of CPU (216 shared libraries), more than decoding a short file,
 * so a corpus of short files pays it once per group instead of once per file.
 *
 * Each input has its own filter chain, so every output is byte for byte what
 * ffmpegDecode gives for that file (the tests check this). The result is all or
 * nothing: the group counts only when ffmpeg exits 0 with nothing on stderr
 * (`-v error`), and every output holds whole, finite samples. Otherwise the
 * caller decodes the files one by one, which gives each file its own result
 * and its own error, exactly as if it had never been grouped. Never throws.
 */
export async function ffmpegDecodeGroup(files: FileSource[], opts: GroupDecodeOptions): Promise<GroupResult> {
  const paths = files.map((f) => f.path);
  const nul = paths.findIndex((p) => p.includes('\0'));
  if (nul >= 0) return { ok: false, reason: 'path contains a NUL byte', culprit: nul };
  const args = [...FFMPEG_QUIET, ...files.flatMap((f) => ffmpegInputArgs(f)), ...paths.flatMap((_, i) => ffmpegOutputArgs(i, opts.sampleRate, `pipe:${3 + i}`, opts.blockWrites ?? true))];
  let ff: FfmpegProcess<'limit'>;
  try {
    ff = new FfmpegProcess(args, ['ignore', 'ignore', 'pipe', ...paths.map(() => 'pipe' as const)], opts.timeoutMs);
  } catch (e) {
    return { ok: false, reason: `cannot run ffmpeg: ${(e as Error).message}` };
  }
  const chunks: Buffer[][] = paths.map(() => []);
  let held = 0;
  paths.forEach((_, i) => {
    // every pipe is drained at once: ffmpeg interleaves its outputs and would block on a full one
    const out = ff.child.stdio[3 + i] as Readable;
    out.on('error', () => {}); // a broken pipe shows in the exit status
    out.on('data', (d: Buffer) => {
      held += d.length;
      if (held > opts.maxOutputBytes) ff.kill('limit');
      else chunks[i].push(d);
    });
  });
  const outcome = await ff.exit;
  ff.dispose();
  const { stderr } = ff;
  if (outcome.error) return { ok: false, reason: `cannot run ffmpeg: ${outcome.error.message}` };
  if (ff.stopped === 'limit') return { ok: false, reason: `more than ${opts.maxOutputBytes} bytes of decoded audio`, overLimit: true };
  if (ff.stopped === 'timeout') return { ok: false, reason: `took longer than ${opts.timeoutMs / 1000} s` };
  if (outcome.code !== 0 || stderr.trim()) return { ok: false, reason: firstLine(stderr) || `ffmpeg exited with code ${outcome.code}`, culprit: culpritOf(stderr, paths) };
  const pcm: Float32Array[] = [];
  for (const [i, parts] of chunks.entries()) {
    const bytes = parts.reduce((s, p) => s + p.length, 0);
    if (bytes === 0 || bytes % 4) return { ok: false, reason: `input ${i} gave ${bytes} bytes`, culprit: i };
    // copied into place: pipe chunks may sit at unaligned offsets of shared buffers
    const samples = new Float32Array(bytes / 4);
    const view = Buffer.from(samples.buffer);
    parts.reduce((o, p) => (view.set(p, o), o + p.length), 0);
    if (firstNonFinite(samples) >= 0) return { ok: false, reason: `input ${i} decoded to non-finite samples`, culprit: i };
    pcm.push(samples);
  }
  return { ok: true, pcm };
}

/** The input an ffmpeg error names: "file:PATH: ...", "Stream map '3:a:0' ...", "... stream #3:0 ...". */
function culpritOf(stderr: string, paths: string[]): number | undefined {
  for (const line of stderr.split('\n')) {
    const byPath = paths.findIndex((p) => line.startsWith(`file:${p}: `));
    if (byPath >= 0) return byPath;
    const m = /Stream map '(\d+):|stream #(\d+):/i.exec(line);
    if (m) {
      const i = Number(m[1] ?? m[2]);
      if (i < paths.length) return i;
    }
  }
  return undefined;
}
