import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { KEY_PROTOCOL_PREFIX, PROTOCOL_V1 } from '../protocol/stream.js';

/** The settings auth reads (declared here: the settings table imports rooms/grants.ts, which imports this file). */
export interface AuthSettings {
  apiKeys: readonly string[];
  noAuth: boolean;
  allowedOrigins: readonly string[];
}

export type AuthFailure = { code: 'unauthorized' | 'origin_not_allowed'; message: string };

/**
 * API-key and origin checks shared by WebSocket streams and HTTP routes. Keys come from
 * `authorization: Bearer`, `x-api-key`, `?token=` or a `tokstream.key.<key>` subprotocol.
 */
export class Authenticator {
  private readonly digests: Buffer[];

  constructor(private readonly config: AuthSettings) {
    // comparing fixed-length digests keeps the check constant-time whatever the key lengths
    this.digests = config.apiKeys.map(digest);
  }

  get enabled(): boolean {
    return !this.config.noAuth;
  }

  /** Null when the request may proceed. */
  check(headers: IncomingHttpHeaders, query: URLSearchParams): AuthFailure | null {
    const origin = this.checkOrigin(headers);
    if (origin) return origin;
    if (this.config.noAuth) return null;
    const key = presentedKey(headers, query);
    if (key === undefined) return { code: 'unauthorized', message: 'API key required (authorization: Bearer, x-api-key, ?token= or a tokstream.key.<key> subprotocol)' };
    const d = digest(key);
    let ok = false;
    for (const k of this.digests) ok = timingSafeEqual(k, d) || ok;
    return ok ? null : { code: 'unauthorized', message: 'API key not accepted' };
  }

  /** Browsers send Origin; the server's own origin and the allow-list pass, other sites do not. */
  checkOrigin(headers: IncomingHttpHeaders): AuthFailure | null {
    const origin = headers.origin;
    if (origin === undefined || this.config.allowedOrigins.includes('*')) return null;
    if (this.config.allowedOrigins.includes(origin)) return null;
    try {
      if (new URL(origin).host === headers.host) return null;
    } catch {
      // "null" or garbage: not same-origin
    }
    return { code: 'origin_not_allowed', message: `origin ${origin} is not allowed` };
  }

  /** Fastify onRequest/preHandler hook for HTTP routes (JSON error, 401/403). */
  hook(): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
    return async (req, reply) => {
      const url = new URL(req.url, 'http://local');
      const failure = this.check(req.headers, url.searchParams);
      // returning the reply tells fastify the request is answered: the route handler does not run
      if (failure) return reply.code(failure.code === 'unauthorized' ? 401 : 403).send({ error: { code: failure.code, message: failure.message } });
      return undefined;
    };
  }
}

/** The key a request carries, wherever it put it (exported for room-scoped keys, server/rooms/grants.ts). */
export function presentedKey(headers: IncomingHttpHeaders, query: URLSearchParams): string | undefined {
  const auth = headers.authorization;
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x) return x;
  const token = query.get('token');
  if (token) return token;
  for (const p of offeredProtocols(headers)) if (p.startsWith(KEY_PROTOCOL_PREFIX)) return p.slice(KEY_PROTOCOL_PREFIX.length);
  return undefined;
}

function offeredProtocols(headers: IncomingHttpHeaders): string[] {
  const h = headers['sec-websocket-protocol'];
  return typeof h === 'string' ? h.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

/** The subprotocol the server answers with: never the key entry (it would echo the secret). */
export function selectProtocol(protocols: Set<string>): string | false {
  return protocols.has(PROTOCOL_V1) ? PROTOCOL_V1 : false;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
