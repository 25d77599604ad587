import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { CodecError } from '../codec/index.js';
import { UsageError } from './usage.js';

/** A file that must exist and be a regular file (decode and info inputs). */
export async function inputFile(path: string): Promise<string> {
  const st = await stat(path).catch((e: Error) => {
    throw new CodecError('invalid_argument', `cannot read ${path}: ${e.message}`);
  });
  if (!st.isFile()) throw new CodecError('invalid_argument', `${path} is not a regular file`);
  return path;
}

/** An output written through a temporary file renamed at the end: no half-written output on failure. */
export interface Output {
  write(bytes: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/** Opens the output before any work is done, so a path that cannot be written fails at once (usage error). */
async function openOutput(path: string): Promise<Output> {
  const existing = await stat(path).catch(() => null);
  if (existing?.isDirectory()) throw new UsageError(`-o ${path} is a folder; give a file name`);
  const tmp = `${path}.partial-${process.pid}`;
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'w');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'its folder does not exist' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.message;
    throw new UsageError(`cannot write -o ${path}: ${why}`);
  }
  let closed = false;
  const close = async () => {
    if (!closed) await fh.close();
    closed = true;
  };
  return {
    async write(bytes) {
      for (let off = 0; off < bytes.length; ) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
    },
    async commit() {
      await close();
      await rename(tmp, path);
    },
    async discard() {
      await close().catch(() => {});
      await rm(tmp, { force: true });
    },
  };
}

/** Runs `body` with the output open; commits on success, removes the partial file on any failure. */
export async function withOutput<T>(path: string, body: (out: Output) => Promise<T>): Promise<T> {
  const out = await openOutput(path);
  try {
    const result = await body(out);
    await out.commit();
    return result;
  } catch (e) {
    await out.discard();
    throw e;
  }
}
