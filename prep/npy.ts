import type { TokenBlock } from '../codec/pure/types.js';
import { CodecError } from '../codec/pure/errors.js';

/**
 * Serialises tokens as a NumPy .npy file (format 1.0): uint16, C order, shape
 * [codebooks, frames], which is exactly TokenBlock's codebook-major layout.
 * The header is padded so the data starts on a 64-byte boundary, as numpy writes it.
 */
export function tokensToNpy(block: TokenBlock): Buffer {
  const { numCodebooks: k, numFrames: t, codes } = block;
  const dict = `{'descr': '<u2', 'fortran_order': False, 'shape': (${k}, ${t}), }`;
  const preamble = 10; // magic (6) + version (2) + header length (2)
  const total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  const header = dict.padEnd(total - preamble - 1, ' ') + '\n';
  const out = Buffer.alloc(total + codes.length * 2);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, preamble, 'latin1');
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c < 0 || c > 0xffff) throw new CodecError('invalid_tokens', `code ${c} does not fit uint16`);
    out.writeUInt16LE(c, total + i * 2);
  }
  return out;
}

/** Parses what tokensToNpy writes (uint16, C order, 2-D); used by tests and tools. */
export function npyToTokens(buf: Buffer): TokenBlock {
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new CodecError('invalid_tokens', 'not an .npy file');
  const hlen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + hlen);
  const m = /'descr': '<u2', 'fortran_order': False, 'shape': \((\d+), (\d+)\)/.exec(header);
  if (!m) throw new CodecError('invalid_tokens', `unsupported .npy header ${header.trim()}`);
  const k = Number(m[1]);
  const t = Number(m[2]);
  const codes = new Int32Array(k * t);
  for (let i = 0; i < codes.length; i++) codes[i] = buf.readUInt16LE(10 + hlen + i * 2);
  return { numCodebooks: k, numFrames: t, codes };
}
