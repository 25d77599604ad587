/** Random-access byte sources for seeking: bytes in memory, or an open file read at offsets. */
import type { FileHandle } from 'node:fs/promises';
import { TokFormatError } from './errors.js';

export interface RandomSource {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export function bufferSource(buf: Uint8Array): RandomSource {
  return { size: buf.length, read: async (o, n) => buf.subarray(o, o + n), close: async () => {} };
}

export async function fileSource(fh: FileHandle, owned: boolean): Promise<RandomSource> {
  const { size } = await fh.stat();
  return {
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await fh.read(out, filled, length - filled, offset + filled);
        if (bytesRead === 0) throw new TokFormatError('truncated', 'file shrank while being read', offset + filled);
        filled += bytesRead;
      }
      return out;
    },
    close: async () => {
      if (owned) await fh.close();
    },
  };
}
