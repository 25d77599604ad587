/** Sequential readers: a whole file in memory (readTok) and a file arriving in pieces (readTokStream). */
import { unpackChunk, type ChunkInfo } from './chunk.js';
import { TokFormatError } from './errors.js';
import { TokParser, type ParseEvent } from './parser.js';
import { resolveLimits, type TokHeader, type TokReadOptions, type TokReadResult, type TokStreamEvent } from './types.js';

/**
 * Reads a whole .tok file held in memory. Throws TokFormatError on any corruption or truncation,
 * unless allowTruncated / allowDamaged ask for the intact prefix (complete=false, `problem` says why).
 */
export function readTok(buf: Uint8Array, opts: TokReadOptions = {}): TokReadResult {
  const parser = new TokParser(opts);
  parser.feed(buf);
  parser.finish();
  let header: TokHeader | null = null;
  const chunks: { info: ChunkInfo; block: Uint8Array }[] = [];
  let end: Extract<ParseEvent, { type: 'end' }> | null = null;
  for (let ev = parser.next(); ev !== null; ev = parser.next()) {
    if (ev.type === 'header') header = ev.header;
    else if (ev.type === 'chunk') chunks.push(ev);
    else end = ev;
  }
  const h = header as TokHeader;
  const e = end as NonNullable<typeof end>;
  const limits = resolveLimits(opts);
  if (h.numCodebooks * e.totalFrames > limits.maxTotalCodes) {
    throw new TokFormatError('limit_exceeded', `${h.numCodebooks} x ${e.totalFrames} codes exceed maxTotalCodes ${limits.maxTotalCodes}`);
  }
  let frames = e.totalFrames;
  let codes: Int32Array = new Int32Array(h.numCodebooks * frames);
  let complete = e.complete;
  let problem = e.problem;
  for (const { info, block } of chunks) {
    try {
      unpackChunk(h, block, info, codes, { rows: h.numCodebooks, cols: info.numFrames, stride: frames, col: info.firstFrame });
    } catch (err) {
      if (!(err instanceof TokFormatError) || !opts.allowDamaged) throw err;
      codes = firstFrames(codes, h.numCodebooks, frames, info.firstFrame);
      frames = info.firstFrame;
      complete = false;
      problem = err;
      break;
    }
  }
  const tokens = { numCodebooks: h.numCodebooks, numFrames: frames, codes };
  return { header: h, tokens, complete, originalLength: complete ? e.originalLength : null, ...(problem ? { problem } : {}) };
}

function firstFrames(codes: Int32Array, rows: number, stride: number, keep: number): Int32Array {
  const out = new Int32Array(rows * keep);
  for (let k = 0; k < rows; k++) out.set(codes.subarray(k * stride, k * stride + keep), k * keep);
  return out;
}

/**
 * Reads a .tok file arriving in pieces (an upload, a socket), yielding the header, then the tokens
 * chunk by chunk as soon as each chunk is complete and verified, then an end event. Memory stays
 * within one chunk plus one piece. Errors are thrown where they are found, after every good chunk
 * before them has been yielded.
 */
export async function* readTokStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: TokReadOptions = {},
): AsyncGenerator<TokStreamEvent, void, undefined> {
  const parser = new TokParser(opts);
  let header: TokHeader | null = null;
  // A generator, so events before an error in the same piece are still delivered.
  function* drain(): Generator<TokStreamEvent> {
    for (let ev = parser.next(); ev !== null; ev = parser.next()) {
      if (ev.type === 'header') header = ev.header;
      if (ev.type !== 'chunk') {
        yield ev;
        continue;
      }
      const h = header as TokHeader;
      const tokens = { numCodebooks: h.numCodebooks, numFrames: ev.info.numFrames, codes: new Int32Array(h.numCodebooks * ev.info.numFrames) };
      try {
        unpackChunk(h, ev.block, ev.info, tokens.codes, { rows: h.numCodebooks, cols: ev.info.numFrames, stride: ev.info.numFrames, col: 0 });
      } catch (err) {
        if (!(err instanceof TokFormatError)) throw err;
        yield parser.damage(err, ev.info.firstFrame);
        return;
      }
      yield { type: 'tokens', firstFrame: ev.info.firstFrame, tokens };
    }
  }
  for await (const piece of source) {
    parser.feed(piece);
    for (const ev of drain()) {
      yield ev;
      if (ev.type === 'end') return;
    }
  }
  parser.finish();
  yield* drain();
}
