/**
 * Minimal deterministic ustar writer: every header has mode 0644, uid/gid 0,
 * empty user/group names and mtime 0, so identical entries give identical bytes.
 */
export const TAR_BLOCK = 512;

/** Bytes an entry with `size` bytes of data takes in the archive. */
export function tarEntrySize(size: number): number {
  return TAR_BLOCK + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

/** End-of-archive marker: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);

/** Header + data + padding for one regular file. Names must be ASCII and at most 100 bytes. */
export function tarEntry(name: string, data: Uint8Array): Buffer {
  if (!/^[\x21-\x7e]{1,100}$/.test(name)) throw new RangeError(`tar entry name must be 1-100 printable ASCII bytes: ${JSON.stringify(name)}`);
  const out = Buffer.alloc(tarEntrySize(data.length));
  out.write(name, 0, 'ascii');
  octal(out, 100, 8, 0o644);
  octal(out, 108, 8, 0); // uid
  octal(out, 116, 8, 0); // gid
  octal(out, 124, 12, data.length);
  octal(out, 136, 12, 0); // mtime
  out.fill(0x20, 148, 156); // checksum is computed with this field as spaces
  out.write('0', 156, 'ascii'); // regular file
  out.write('ustar\x0000', 257, 'latin1');
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += out[i];
  out.write(sum.toString(8).padStart(6, '0') + '\x00 ', 148, 'latin1');
  out.set(data, TAR_BLOCK);
  return out;
}

function octal(buf: Buffer, offset: number, width: number, value: number): void {
  const s = value.toString(8);
  if (s.length > width - 1) throw new RangeError(`${value} does not fit a ${width}-byte tar field`);
  buf.write(s.padStart(width - 1, '0') + '\x00', offset, 'ascii');
}
