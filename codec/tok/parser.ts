/**
 * Sequential .tok parser: one state machine behind readTok (whole buffer) and readTokStream (pieces).
 * It verifies structure and checksums as bytes arrive; unpacking chunk codes is left to the caller.
 */
import { CodecError } from '../pure/errors.js';
import { ByteQueue } from './byte-queue.js';
import { checkChunkBodyLength, verifyChunk, type ChunkInfo } from './chunk.js';
import { TokFormatError } from './errors.js';
import { checkMagic, decodeHeader, headerExtent } from './header.js';
import { BLOCK_FRAMING, FOOTER_BYTES, PREFIX_BYTES, TAG_CHUNK, TAG_INDEX, TOK_MAGIC, view } from './layout.js';
import { checkIndexLayout, decodeFooter, decodeIndex, indexBodyLength, type IndexData } from './trailer.js';
import { resolveLimits, type TokHeader, type TokLimits, type TokReadOptions, type TokStreamEvent } from './types.js';

export type ParseEvent =
  | { type: 'header'; header: TokHeader }
  | { type: 'chunk'; info: ChunkInfo; block: Uint8Array }
  | Extract<TokStreamEvent, { type: 'end' }>;

/** feed() bytes as they arrive, finish() at the end of input, and pull next() until it returns null. */
export class TokParser {
  private readonly queue = new ByteQueue();
  private readonly limits: TokLimits;
  private state: 'header' | 'blocks' | 'footer' | 'done' | 'ended' = 'header';
  private eof = false;
  private pos = 0;
  private header: TokHeader | null = null;
  private readonly chunks: ChunkInfo[] = [];
  private frames = 0;
  private index: IndexData | null = null;
  private indexOffset = 0;

  constructor(private readonly opts: TokReadOptions) {
    this.limits = resolveLimits(opts);
  }

  feed(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) throw new CodecError('invalid_argument', '.tok stream pieces must be Uint8Array/Buffer');
    this.queue.push(bytes);
  }

  finish(): void {
    this.eof = true;
  }

  /** Next event, or null when more bytes are needed (or after the end event). */
  next(): ParseEvent | null {
    if (this.state === 'ended') return null;
    try {
      return this.step();
    } catch (e) {
      if (e instanceof TokFormatError) return this.damage(e);
      throw e;
    }
  }

  /**
   * Applies the damage policy: the end event (salvaging what came before), or the error.
   * `framesKept` when a chunk already counted turned out bad on unpacking.
   */
  damage(err: TokFormatError, framesKept = this.frames): Extract<ParseEvent, { type: 'end' }> {
    const salvage = this.header !== null && (this.opts.allowDamaged === true || (err.code === 'truncated' && this.opts.allowTruncated === true));
    const complete = this.state === 'done';
    this.state = 'ended';
    if (!salvage) throw err;
    // Without a verified footer the trailer is not trusted: incomplete files report no original length.
    return { type: 'end', complete, totalFrames: framesKept, originalLength: complete ? (this.index as IndexData).originalLength : null, problem: err };
  }

  /** A contiguous view of the next n bytes, null when they have not arrived yet; throws at end of input. */
  private need(n: number, what: string): Uint8Array | null {
    if (this.queue.length >= n) return this.queue.peek(n);
    if (!this.eof) return null;
    throw new TokFormatError('truncated', `file ends inside the ${what} (needs ${n} bytes, has ${this.queue.length})`, this.pos + this.queue.length);
  }

  private consume(n: number): void {
    this.queue.skip(n);
    this.pos += n;
  }

  private step(): ParseEvent | null {
    switch (this.state) {
      case 'header': {
        if (this.queue.length > 0) checkMagic(this.queue.peek(Math.min(this.queue.length, TOK_MAGIC.length)));
        const prefix = this.need(PREFIX_BYTES, 'header');
        if (!prefix) return null;
        const bytes = this.need(headerExtent(prefix, this.limits), 'header');
        if (!bytes) return null;
        this.header = decodeHeader(bytes, this.limits);
        this.consume(bytes.length);
        this.state = 'blocks';
        return { type: 'header', header: this.header };
      }
      case 'blocks': {
        const h = this.header as TokHeader;
        if (this.queue.length === 0 && this.eof) {
          throw new TokFormatError('truncated', `no index after ${this.chunks.length} chunks (${this.frames} frames): the stream was cut off`, this.pos);
        }
        const prefix = this.need(8, 'block prefix');
        if (!prefix) return null;
        const tag = view(prefix).getUint32(0, true);
        const bodyLength = view(prefix).getUint32(4, true);
        if (tag === TAG_CHUNK) {
          const block = this.need(checkChunkBodyLength(h, bodyLength, this.pos), 'chunk');
          if (!block) return null;
          const info = verifyChunk(h, block, this.pos, this.frames);
          this.chunks.push(info);
          this.frames += info.numFrames;
          this.consume(block.length);
          return { type: 'chunk', info, block };
        }
        if (tag === TAG_INDEX) {
          // Known before the bytes arrive: one entry per chunk seen, so a forged length cannot make us buffer.
          if (bodyLength !== indexBodyLength(this.chunks.length)) {
            throw new TokFormatError('bad_index', `index body of ${bodyLength} bytes after ${this.chunks.length} chunks`, this.pos + 4);
          }
          const block = this.need(bodyLength + BLOCK_FRAMING, 'index');
          if (!block) return null;
          const idx = decodeIndex(block, this.pos);
          checkIndexLayout(h, idx, this.pos);
          idx.entries.forEach((e, i) => {
            if (e.offset !== this.chunks[i].offset || e.numFrames !== this.chunks[i].numFrames) {
              throw new TokFormatError('bad_index', `index entry ${i} disagrees with the chunk at byte ${this.chunks[i].offset}`, this.pos);
            }
          });
          this.index = idx;
          this.indexOffset = this.pos;
          this.consume(block.length);
          this.state = 'footer';
          return this.step();
        }
        throw new TokFormatError('bad_chunk', `unknown block tag 0x${tag.toString(16).padStart(8, '0')}`, this.pos);
      }
      case 'footer': {
        const bytes = this.need(FOOTER_BYTES, 'footer');
        if (!bytes) return null;
        if (decodeFooter(bytes, this.pos) !== this.indexOffset) {
          throw new TokFormatError('bad_footer', 'footer does not point at the index', this.pos);
        }
        this.consume(FOOTER_BYTES);
        this.state = 'done';
        return this.step();
      }
      case 'done': {
        if (this.queue.length > 0) throw new TokFormatError('trailing_data', `${this.queue.length}+ bytes after the footer`, this.pos);
        if (!this.eof) return null;
        this.state = 'ended';
        const idx = this.index as IndexData;
        return { type: 'end', complete: true, totalFrames: idx.totalFrames, originalLength: idx.originalLength };
      }
      default:
        return null;
    }
  }
}
