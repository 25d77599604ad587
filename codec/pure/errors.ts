/**
 * Every error the codec layer raises on purpose carries a stable `code`.
 * Transports (HTTP, WebSocket, CLI) map codes to their own status vocabulary.
 */
export type CodecErrorCode =
  | 'invalid_audio' // structurally valid container, unusable content (NaN, zero length, absurd header)
  | 'unsupported_media' // not audio, or a format we refuse
  | 'undecodable_audio' // looked like audio, decoder failed
  | 'no_audio' // a readable media file without an audio stream (e.g. a video-only mp4)
  | 'limit_exceeded' // size / duration / rate limits
  | 'model_not_found'
  | 'model_mismatch' // tokens or file made by another model, codebook count out of range
  | 'invalid_tokens' // codes outside the codebook, bad shapes
  | 'invalid_argument'
  | 'timeout'
  | 'aborted'
  | 'model_broken';

export class CodecError extends Error {
  readonly code: CodecErrorCode;
  constructor(code: CodecErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CodecError';
    this.code = code;
  }
}

export function isCodecError(e: unknown): e is CodecError {
  return e instanceof CodecError;
}
