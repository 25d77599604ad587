import { isCodecError } from '../../codec/errors.js';
import { WireError } from '../../clients/ts/protocol.js';

/** Protocol error codes (docs/protocol.md §6): whether they end the stream, and with which close code. */
export const STREAM_ERRORS = {
  bad_json: { fatal: false },
  unknown_type: { fatal: false },
  bad_message: { fatal: false },
  unsupported_version: { fatal: false },
  model_not_found: { fatal: false },
  model_mismatch: { fatal: false },
  not_started: { fatal: false },
  already_started: { fatal: false },
  bad_frame: { fatal: false },
  frame_too_large: { fatal: false },
  invalid_audio: { fatal: false },
  invalid_tokens: { fatal: false },
  frame_gap: { fatal: false },
  too_many_errors: { fatal: true, close: 4000 },
  unauthorized: { fatal: true, close: 4001 },
  origin_not_allowed: { fatal: true, close: 4003 },
  idle_timeout: { fatal: true, close: 4008 },
  slow_consumer: { fatal: true, close: 4009 },
  too_many_streams: { fatal: true, close: 4013 },
  overloaded: { fatal: true, close: 4013 },
  too_fast: { fatal: true, close: 4029 },
  buffer_full: { fatal: true, close: 4029 },
  internal: { fatal: true, close: 4500 },
  shutting_down: { fatal: true, close: 1001 },
  draining: { fatal: true, close: 4503 },
} as const satisfies Record<string, { fatal: boolean; close?: number }>;

export type StreamErrorCode = keyof typeof STREAM_ERRORS;

export class StreamError extends Error {
  constructor(readonly code: StreamErrorCode, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'StreamError';
  }

  get fatal(): boolean {
    return STREAM_ERRORS[this.code].fatal;
  }

  get closeCode(): number | undefined {
    const e = STREAM_ERRORS[this.code];
    return 'close' in e ? e.close : undefined;
  }
}

/** The refusal a draining server gives new streams and room joins. */
export function drainingError(): StreamError {
  return new StreamError('draining', 'server is draining: open the stream on another server');
}

/** Sent once to open streams and listeners when their server begins to drain (docs/protocol.md §5). */
export function drainingNotice(closeInMs: number): object {
  return { type: 'draining', closeInMs, message: 'server is draining: this stream may run on, new streams go elsewhere' };
}

/** Maps codec and wire errors onto protocol codes; anything unexpected is `internal`. */
export function toStreamError(e: unknown): StreamError {
  if (e instanceof StreamError) return e;
  if (e instanceof WireError) return new StreamError(e.code, e.message);
  if (isCodecError(e)) {
    switch (e.code) {
      case 'invalid_tokens':
      case 'model_mismatch':
      case 'invalid_audio':
        return new StreamError(e.code, e.message);
      case 'invalid_argument':
      case 'limit_exceeded':
        return new StreamError('bad_message', e.message);
      case 'model_not_found':
        return new StreamError('model_not_found', e.message);
      default:
        return new StreamError('internal', e.message);
    }
  }
  return new StreamError('internal', (e as Error)?.message ?? String(e));
}
