/**
 * Fixed-width bit packing for codebook indices. A run of values becomes an LSB-first bit
 * stream: value i occupies stream bits [i*bits, (i+1)*bits), its least significant bit first,
 * and stream bit j is bit (j % 8) of byte floor(j / 8). The last byte is padded with zero bits.
 *
 * Both directions work on a [rows, cols] window of a row-major Int32Array (row r starts at
 * r * stride + col), so a chunk is packed straight from the writer's buffer and unpacked straight
 * into a TokenBlock without intermediate copies.
 */

/** Smallest b with 2^b >= codebookSize (codebookSize >= 2): the width of every code in a .tok file. */
export function bitsPerCode(codebookSize: number): number {
  let bits = 1;
  while (2 ** bits < codebookSize) bits++;
  return bits;
}

/** Bytes taken by `count` values of `bits` bits, padding included. */
export function packedLength(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

export interface Window {
  rows: number;
  cols: number;
  stride: number;
  col: number;
}

/**
 * Packs the window of `src` into `dst` from `dstOffset`. Values must be in [0, 2^bits), bits in
 * 1..31; the caller checks the range. Returns the number of bytes written.
 */
export function packCodes(src: Int32Array, w: Window, bits: number, dst: Uint8Array, dstOffset: number): number {
  // The accumulator holds < 8 pending bits between values; with at most 24 more bits it stays
  // below 2^31, so plain int32 shifts are exact. Wider codes go in as a 16-bit and a high part.
  const wide = bits > 24;
  const lowBits = wide ? 16 : bits;
  const highBits = bits - 16;
  let acc = 0;
  let pending = 0;
  let o = dstOffset;
  for (let r = 0; r < w.rows; r++) {
    const base = r * w.stride + w.col;
    const end = base + w.cols;
    for (let i = base; i < end; i++) {
      const v = src[i];
      acc |= (wide ? v & 0xffff : v) << pending;
      pending += lowBits;
      while (pending >= 8) {
        dst[o++] = acc & 0xff;
        acc >>>= 8;
        pending -= 8;
      }
      if (wide) {
        acc |= (v >>> 16) << pending;
        pending += highBits;
        while (pending >= 8) {
          dst[o++] = acc & 0xff;
          acc >>>= 8;
          pending -= 8;
        }
      }
    }
  }
  if (pending > 0) dst[o++] = acc & 0xff;
  return o - dstOffset;
}

/**
 * Unpacks rows*cols values from `src` at `srcOffset` into the window of `dst`. The caller
 * guarantees src holds packedLength(rows*cols, bits) bytes from srcOffset.
 * Returns the largest value read, so the caller can check it against the codebook size.
 */
export function unpackCodes(src: Uint8Array, srcOffset: number, bits: number, dst: Int32Array, w: Window): number {
  const wide = bits > 24;
  const lowBits = wide ? 16 : bits;
  const lowMask = (1 << lowBits) - 1;
  const highBits = bits - 16;
  const highMask = (1 << highBits) - 1;
  let acc = 0;
  let pending = 0;
  let i = srcOffset;
  let max = 0;
  for (let r = 0; r < w.rows; r++) {
    const base = r * w.stride + w.col;
    const end = base + w.cols;
    for (let o = base; o < end; o++) {
      // pending < lowBits <= 24 before each byte, so the shifted byte stays below 2^31.
      while (pending < lowBits) {
        acc |= src[i++] << pending;
        pending += 8;
      }
      let v = acc & lowMask;
      acc >>>= lowBits;
      pending -= lowBits;
      if (wide) {
        while (pending < highBits) {
          acc |= src[i++] << pending;
          pending += 8;
        }
        v |= (acc & highMask) << 16;
        acc >>>= highBits;
        pending -= highBits;
      }
      dst[o] = v;
      if (v > max) max = v;
    }
  }
  return max;
}
