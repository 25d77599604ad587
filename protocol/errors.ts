/**
 * Protocol error codes (docs/protocol.md §6): whether each ends the stream, and with which
 * WebSocket close code. The server sends them; clients read them; a test keeps the doc's table
 * equal to this one.
 */
export const PROTOCOL_ERRORS = {
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

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERRORS;

/** Close code of the `draining` refusal: this server takes no new streams; connect again (through the balancer). */
export const CLOSE_DRAINING = PROTOCOL_ERRORS.draining.close;

/**
 * Error codes that say nothing about the request, only about this server now: the same stream
 * opened again (a balancer sends it to another server) may succeed.
 */
export const RETRY_ELSEWHERE_CODES: ReadonlySet<string> = new Set<ProtocolErrorCode>(['draining', 'shutting_down', 'overloaded', 'too_many_streams']);

/** A message or frame the protocol refuses, as the `error` message that reports it. */
export class ProtocolError extends Error {
  constructor(readonly code: ProtocolErrorCode, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ProtocolError';
  }

  get fatal(): boolean {
    return PROTOCOL_ERRORS[this.code].fatal;
  }

  get closeCode(): number | undefined {
    const e = PROTOCOL_ERRORS[this.code];
    return 'close' in e ? e.close : undefined;
  }
}
