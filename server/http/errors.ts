import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isCodecError, type CodecErrorCode } from '../../codec/errors.js';

/** Error codes only the HTTP layer produces. */
export type HttpOnlyCode = 'overloaded' | 'draining' | 'payload_too_large' | 'unauthorized' | 'invalid_request' | 'internal';

/** An error with its HTTP status decided where it is raised. */
export class HttpApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: CodecErrorCode | HttpOnlyCode | 'invalid_tok',
    message: string,
    readonly retryAfterSec?: number,
  ) {
    super(message);
    this.name = 'HttpApiError';
  }
}

/** Codec error codes to HTTP statuses (documented in docs/http-api.md). */
export const CODEC_STATUS: Record<CodecErrorCode, number> = {
  invalid_audio: 422,
  unsupported_media: 415,
  undecodable_audio: 422,
  limit_exceeded: 413,
  model_not_found: 400,
  model_mismatch: 400,
  invalid_tokens: 422,
  invalid_argument: 400,
  timeout: 504,
  aborted: 499,
  model_broken: 500,
};

export interface ErrorBody {
  error: { code: string; message: string };
}

/** Status, code and message for anything a route may throw. */
export function describeError(e: unknown): { status: number; code: string; message: string; retryAfterSec?: number } {
  const d = classify(e);
  return { ...d, message: scrub(d.message) };
}

/** Server-side paths (spool files) and pointer values from ffmpeg logs are none of the client's business. */
function scrub(message: string): string {
  return message.replace(/(?:file:)?\/[^\s'"]*tokstream-spool-[^\s'"]*/g, 'upload').replace(/ @ 0x[0-9a-f]+/g, '');
}

function classify(e: unknown): { status: number; code: string; message: string; retryAfterSec?: number } {
  if (e instanceof HttpApiError) return { status: e.status, code: e.code, message: e.message, retryAfterSec: e.retryAfterSec };
  if (isCodecError(e)) return { status: CODEC_STATUS[e.code], code: e.code, message: e.message };
  const err = e as Partial<FastifyError> & { name?: string; message?: string };
  if (err?.name === 'TokFormatError') return { status: 422, code: 'invalid_tok', message: err.message ?? 'invalid .tok' };
  if (err?.validation) return { status: 400, code: 'invalid_request', message: err.message ?? 'invalid request' };
  if (err?.code === 'FST_REQ_FILE_TOO_LARGE' || err?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, code: 'payload_too_large', message: err.message ?? 'payload too large' };
  }
  if (err?.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE' || err?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { status: 415, code: 'unsupported_media', message: err.message ?? 'unsupported content type' };
  }
  // multipart/fastify errors that carry a 4xx status are the client's; anything else is ours
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, code: 'invalid_request', message: err.message ?? 'bad request' };
  }
  return { status: 500, code: 'internal', message: 'internal error' };
}

/** Sends `{error: {code, message}}`, or cuts the connection when the body has already started. */
export function sendError(e: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const d = describeError(e);
  if (d.status >= 500 && d.code !== 'overloaded' && d.code !== 'draining') request.log.error({ err: e }, 'http api request failed');
  else request.log.info({ code: d.code, status: d.status }, d.message);
  if (reply.raw.headersSent) {
    // a streamed body cannot change its status: the transfer is cut short so the client sees it incomplete
    reply.raw.destroy();
    return;
  }
  if (d.retryAfterSec !== undefined) void reply.header('retry-after', String(d.retryAfterSec));
  // the rest of an unread upload is not worth receiving
  if (!request.raw.complete) void reply.header('connection', 'close');
  void reply.code(d.status).type('application/json').send({ error: { code: d.code, message: d.message } } satisfies ErrorBody);
}
