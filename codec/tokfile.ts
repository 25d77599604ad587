/**
 * The .tok token container (byte layout: docs/tok-format.md), public entry point.
 *
 *   header | chunk* | index | footer
 *
 * Every byte sits under a CRC-32, so any single-byte corruption is detected; chunks hold a bounded
 * number of frames, so a writer streams tokens as they arrive and a reader seeks through the
 * footer's index (or, when a stream was cut, by walking chunk headers forward).
 *
 * The implementation lives in ./tok/; this module names the public API and nothing else.
 */
export { DEFAULT_FRAMES_PER_CHUNK, MAX_FRAMES_PER_CHUNK, MAX_METADATA_BYTES, TOK_MAGIC, TOK_VERSION } from './tok/layout.js';
export { TokFormatError, type TokFormatErrorCode } from './tok/errors.js';
export {
  DEFAULT_TOK_LIMITS,
  type TokHeader,
  type TokHeaderFields,
  type TokLimits,
  type TokReadOptions,
  type TokReadResult,
  type TokStreamEvent,
} from './tok/types.js';
export { readTokHeader } from './tok/header.js';
export { readTok, readTokStream } from './tok/reader.js';
export { verifyTok, type TokVerification, type TokVerifyOptions } from './tok/verify.js';
export { frameAtTime, openTok, readTokRange, type TokFile } from './tok/seek.js';
export { encodeTok, TokWriter, type TokSink } from './tok/writer.js';
export { assertTokMatchesModel, TokModelMismatchError, type TokModelIdentity } from './tok/model-check.js';
