import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isCodecError, type CodecErrorCode } from '../../codec/pure/errors.js';

/** Error codes only the HTTP layer produces. */
export type HttpOnlyCode =
  | 'overloaded' | 'draining' | 'payload_too_large' | 'unauthorized' | 'invalid_request' | 'not_found' | 'unavailable' | 'internal';

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
  no_audio: 422,
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
  if (err?.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') return { status: 415, code: 'unsupported_media', message: err.message ?? 'not multipart' };
  // errors fastify and its plugins raise themselves (bad JSON, content type, size, URL...) carry a 4xx status: the client's
  const status = err?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, code: FASTIFY_STATUS_CODE[status] ?? 'invalid_request', message: err.message ?? 'bad request' };
  }
  return { status: 500, code: 'internal', message: 'internal error' };
}

/** Codes for the 4xx statuses fastify picks itself; any other 4xx is `invalid_request`. */
const FASTIFY_STATUS_CODE: Record<number, string> = { 404: 'not_found', 413: 'payload_too_large', 415: 'unsupported_media' };

/**
 * True when the client hung up before the exchange was over: nothing can reach it any more, and
 * whatever failed because of that is the abort's consequence, not a fault.
 */
function clientGone(request: FastifyRequest, reply: FastifyReply): boolean {
  return (request.raw.destroyed && !request.raw.complete) || reply.raw.destroyed || Boolean(request.raw.socket?.destroyed);
}

/** Server faults with their stack (error level); the client's mistakes and refusals at info, one line, no stack. */
export function logFailure(e: unknown, request: FastifyRequest): void {
  const d = describeError(e);
  if (d.status >= 500 && !['overloaded', 'unavailable', 'draining'].includes(d.code)) request.log.error({ err: e }, 'http request failed');
  else request.log.info({ code: d.code, status: d.status }, d.message);
}

/** Sends `{error: {code, message}}`, or cuts the connection when the body has already started. */
export function sendError(e: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const d = describeError(e);
  if (clientGone(request, reply)) {
    // what failed because the client hung up is no fault (a job route logs the abort itself, at info)
    request.log.debug({ code: d.code, reason: d.message }, 'failed after the client went away');
    reply.raw.destroy();
    return;
  }
  logFailure(e, request);
  if (reply.raw.headersSent) {
    // a streamed body cannot change its status: the transfer is cut short so the client sees it incomplete
    reply.raw.destroy();
    return;
  }
  if (d.retryAfterSec !== undefined) void reply.header('retry-after', String(d.retryAfterSec));
  // the rest of an unread upload is not worth receiving
  if (!request.raw.complete) {
    void reply.header('connection', 'close');
    lingerThenClose(request);
  }
  void reply.code(d.status).type('application/json').send({ error: { code: d.code, message: d.message } } satisfies ErrorBody);
}

/** How long a connection closed with its upload unread keeps discarding what the client still sends. */
const LINGER_MS = 2000;

/**
 * Node closes a `connection: close` socket as soon as the answer is written; with upload bytes
 * still arriving that close is a reset, and a client busy sending may lose the answer (EPIPE
 * instead of the 503). So this socket closes gently: our side is shut, what the client still
 * sends is read and dropped for up to LINGER_MS, then the socket is closed (a lingering close).
 */
function lingerThenClose(request: FastifyRequest): void {
  const socket = request.raw.socket as Socket & { destroySoon?: () => void };
  if (!socket || socket.destroyed) return;
  socket.destroySoon = () => {
    socket.end();
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}

/**
 * Every error the server answers itself, in the documented shape: unknown routes (404), errors of
 * any route or of fastify (bad JSON, content type, size), and requests arriving while it closes.
 * For the root instance (server/app.ts); the HTTP API plugin also sets the error handler on its own
 * routes, so it keeps the shape when embedded elsewhere.
 */
export function useJsonErrors(app: FastifyInstance, isClosing: () => boolean = () => false): void {
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
  app.setNotFoundHandler((request, reply) => {
    sendError(new HttpApiError(404, 'not_found', `no route ${request.method} ${request.url.replace(/\?.*$/, '')}`), request, reply);
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!isClosing()) return;
    void reply.header('connection', 'close');
    sendError(new HttpApiError(503, 'unavailable', 'server is shutting down'), request, reply);
    return reply;
  });
}

/**
 * fastify's `clientErrorHandler`: HTTP that node cannot even parse (bad request line, headers too
 * large, header timeout) gets the documented body too, written straight to the socket.
 */
export function clientErrorReply(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout', 'request headers took too long']
    : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'invalid_request', 'request headers too large']
    : [400, 'invalid_request', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}
