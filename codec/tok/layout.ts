/**
 * Byte layout of a .tok file (docs/tok-format.md): header | chunk* | index | footer.
 * All integers are little-endian; every structure ends in a CRC-32 of its own bytes.
 */
export const TOK_MAGIC = Uint8Array.of(0x89, 0x54, 0x4f, 0x4b, 0x0d, 0x0a, 0x1a, 0x0a); // "\x89TOK\r\n\x1a\n"
export const TOK_VERSION = { major: 1, minor: 0 } as const;
export const DEFAULT_FRAMES_PER_CHUNK = 256;
export const MAX_FRAMES_PER_CHUNK = 65536;
export const MAX_METADATA_BYTES = 65536;
export const MAX_U32 = 0xffffffff;
/** originalLength as stored when the writer did not know it */
export const UNKNOWN_LENGTH = 0xffffffffffffffffn;

const tagValue = (s: string): number => new DataView(new TextEncoder().encode(s).buffer).getUint32(0, true);
export const TAG_CHUNK = tagValue('TCHK');
export const TAG_INDEX = tagValue('TIDX');
export const TAG_END = tagValue('TEND');

export const PREFIX_BYTES = 16; // magic, version, reserved, header body length
export const HEADER_FIXED_BODY = 59; // body bytes besides the model name and the metadata
/** Bytes of a chunk or index block outside its declared body length: tag, body length, CRC. */
export const BLOCK_FRAMING = 12;
export const CHUNK_PREFIX = 16; // tag, body length, first frame, frame count
export const CHUNK_OVERHEAD = CHUNK_PREFIX + 4;
export const INDEX_PREFIX = 24; // tag, body length, total frames, chunk count, original length
export const INDEX_ENTRY = 16;
export const FOOTER_BYTES = 16;

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
