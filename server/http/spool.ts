import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AudioSource } from '../../codec/ffmpeg.js';
import { HttpApiError } from './errors.js';

/** ISO-BMFF (mp4, m4a, mov, 3gp) top-level boxes a file may start with. */
const BMFF_FIRST_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'wide', 'skip']);

/** True when the bytes start like an ISO-BMFF file: its index may sit at the end, so the reader must seek. */
export function needsSeeking(head: Uint8Array): boolean {
  return head.length >= 8 && BMFF_FIRST_BOXES.has(Buffer.from(head.subarray(4, 8)).toString('latin1'));
}

export interface PreparedSource {
  source: AudioSource;
  /** Deletes the spool file, if any (idempotent). */
  cleanup: () => Promise<void>;
  /** Why the upload stopped early (413, client gone), if it did: the source then just ends. */
  uploadError: () => unknown;
}

export interface SpoolOptions {
  spoolDir: string;
  maxSpoolBytes: number;
  signal?: AbortSignal;
}

/**
 * Streams pass straight through, except containers that need seeking: those are
 * written to a private temp file (size-capped) that ffmpeg reads by path.
 */
export async function prepareSource(bytes: Readable, opts: SpoolOptions): Promise<PreparedSource> {
  const it = bytes[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  while (head.length < 8) {
    const r = await it.next();
    if (r.done) break;
    head = Buffer.concat([head, r.value]);
  }
  // The stream handed on ends, rather than fails, when the upload fails: a failing stream piped
  // into a decoder child that has already exited would have no one left to hear its error.
  let failure: unknown;
  const all = Readable.from(prepend(head, it, (e) => (failure ??= e)), { objectMode: false });
  const uploadError = () => failure;
  if (!needsSeeking(head)) return { source: { stream: all }, cleanup: async () => {}, uploadError };

  const dir = await mkdtemp(join(opts.spoolDir, 'tokstream-spool-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const path = join(dir, 'upload');
  try {
    await pipeline(all, capped(opts.maxSpoolBytes), createWriteStream(path, { flags: 'wx', mode: 0o600 }), { signal: opts.signal });
    if (failure) throw failure;
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { source: { path }, cleanup, uploadError };
}

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>, onError: (e: unknown) => void): AsyncGenerator<Buffer> {
  try {
    if (head.length) yield head;
    for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
  } catch (e) {
    onError(e);
  } finally {
    await rest.return?.();
  }
}

function capped(max: number): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* (source) {
    let n = 0;
    for await (const chunk of source) {
      n += chunk.length;
      if (n > max) throw new HttpApiError(413, 'payload_too_large', `upload needs spooling and is larger than the ${max}-byte spool limit`);
      yield chunk;
    }
  };
}

/**
 * Audio that fails with the upload's own error (413, aborted) when the upload stopped early;
 * other errors pass through `mapError`.
 */
export async function* failWithUpload<T>(items: AsyncIterable<T>, uploadError: () => unknown, mapError: (e: unknown) => unknown = (e) => e): AsyncGenerator<T> {
  try {
    yield* items;
  } catch (e) {
    throw uploadError() ?? mapError(e);
  }
  const e = uploadError();
  if (e) throw e;
}
