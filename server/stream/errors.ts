import { isCodecError } from '../../codec/pure/errors.js';
import { ProtocolError } from '../../protocol/errors.js';
import type { DrainingMessage } from '../../protocol/stream.js';

/** The refusal a draining server gives new streams and room joins. */
export function drainingError(): ProtocolError {
  return new ProtocolError('draining', 'server is draining: open the stream on another server');
}

/** Sent once to open streams and listeners when their server begins to drain (docs/protocol.md §5). */
export function drainingNotice(closeInMs: number): DrainingMessage {
  return { type: 'draining', closeInMs, message: 'server is draining: this stream may run on, new streams go elsewhere' };
}

/** Maps codec errors onto protocol codes (wire errors already are protocol errors); anything unexpected is `internal`. */
export function toProtocolError(e: unknown): ProtocolError {
  if (e instanceof ProtocolError) return e;
  if (isCodecError(e)) {
    switch (e.code) {
      case 'invalid_tokens':
      case 'model_mismatch':
      case 'invalid_audio':
        return new ProtocolError(e.code, e.message);
      case 'invalid_argument':
      case 'limit_exceeded':
        return new ProtocolError('bad_message', e.message);
      case 'model_not_found':
        return new ProtocolError('model_not_found', e.message);
      default:
        return new ProtocolError('internal', e.message);
    }
  }
  return new ProtocolError('internal', (e as Error)?.message ?? String(e));
}
