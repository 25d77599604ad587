/**
 * What every tokstream WebSocket client shares (streams and rooms alike): opening the socket with the
 * key where `keyVia` says, the opening handshake, keepalives, and the queue behind `for await`.
 * Plain TypeScript with no Node or DOM dependency, like protocol/.
 */
import { RETRY_ELSEWHERE_CODES } from '../../protocol/errors.js';
import { KEY_PROTOCOL_PREFIX, PROTOCOL_V1, type ErrorMessage } from '../../protocol/stream.js';

/** The part of the WebSocket API used here; browsers' WebSocket and the `ws` package both fit. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketCtor = new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }) => WebSocketLike;

export class TokstreamError extends Error {
  constructor(readonly code: string, message: string, readonly fatal: boolean, readonly closeCode?: number, readonly expectedFrame?: number) {
    super(message);
    this.name = 'TokstreamError';
  }

  /** The server refused or ended the stream for its own state (draining, full, stopping): open it again, elsewhere. */
  get retryElsewhere(): boolean {
    return RETRY_ELSEWHERE_CODES.has(this.code);
  }
}

export interface SocketOptions {
  url: string;
  apiKey?: string;
  /**
   * How the key travels: 'header' (Authorization: Bearer; Node with `ws` only), 'protocol'
   * (Sec-WebSocket-Protocol, the browser default) or 'query' (?token=).
   */
  keyVia?: 'header' | 'protocol' | 'query';
  /** WebSocket implementation (required where there is no global one, e.g. Node 20). */
  WebSocket?: WebSocketCtor;
}

const OPEN = 1;

/**
 * Opens the socket, sends `hello` once it is open and resolves with the first message of type
 * `answer`; binary frames that arrive before the answer are kept in `early`. A server `error`
 * or a close before the answer rejects with a fatal TokstreamError.
 */
export async function openSocket<A extends { type: string }>(opts: SocketOptions, hello: object, answer: A['type']): Promise<{ ws: WebSocketLike; answer: A; early: unknown[] }> {
  const Ctor = opts.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketCtor }).WebSocket;
  if (!Ctor) throw new TokstreamError('no_websocket', 'no WebSocket implementation: pass { WebSocket } (e.g. from the "ws" package)', true);
  const keyVia = opts.keyVia ?? (opts.WebSocket ? 'header' : 'protocol');
  const url = new URL(opts.url);
  const protocols = [PROTOCOL_V1];
  const headers: Record<string, string> = {};
  if (opts.apiKey) {
    if (keyVia === 'query') url.searchParams.set('token', opts.apiKey);
    else if (keyVia === 'protocol') protocols.push(KEY_PROTOCOL_PREFIX + opts.apiKey);
    else headers.authorization = `Bearer ${opts.apiKey}`;
  }
  const ws = new Ctor(url.toString(), protocols, { headers });
  ws.binaryType = 'arraybuffer';
  const early: unknown[] = [];
  const reply = await new Promise<A>((resolve, reject) => {
    let lastError: ErrorMessage | undefined;
    ws.onopen = () => ws.send(JSON.stringify(hello));
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return void early.push(ev.data);
      const m = JSON.parse(ev.data) as A | ErrorMessage;
      if (m.type === answer) resolve(m as A);
      else if (m.type === 'error') {
        lastError = m as ErrorMessage;
        ws.close();
        reject(new TokstreamError(lastError.code, lastError.message, true));
      }
    };
    ws.onerror = () => undefined; // the close event follows with the code
    ws.onclose = (ev) => reject(new TokstreamError(lastError?.code ?? 'connection_closed', lastError?.message ?? `connection closed (${ev.code}) before ${answer}`, true, ev.code));
  });
  return { ws, answer: reply, early };
}

/** Sends a control message unless the socket is no longer open. */
export function sendJson(ws: WebSocketLike, m: object): void {
  if (ws.readyState === OPEN) ws.send(JSON.stringify(m));
}

/** Sends a keepalive every `everyMs` (0 = never); clear the returned timer when the socket closes. */
export function startKeepalive(ws: WebSocketLike, everyMs = 5000): ReturnType<typeof setInterval> | undefined {
  return everyMs > 0 ? setInterval(() => sendJson(ws, { type: 'keepalive' }), everyMs) : undefined;
}

/** Non-fatal server errors go to `onError`; a fatal one becomes the inbox's failure (thrown once the socket closes). */
export function reportServerError(m: ErrorMessage, inbox: Inbox<unknown>, onError?: (e: TokstreamError) => void): void {
  const e = new TokstreamError(m.code, m.message, m.fatal, undefined, m.expectedFrame);
  if (m.fatal) inbox.failure = e;
  else onError?.(e);
}

/** Items in arrival order for `for await`; once ended, the reader gets what is queued, then `failure` (if any) is thrown. */
export class Inbox<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private waiters: (() => void)[] = [];
  /** The fatal error that ends the stream, if one did. */
  failure: TokstreamError | undefined;
  ended = false;

  push(item: T): void {
    this.queue.push(item);
    this.wake();
  }

  /**
   * The socket closed: an unclean close becomes the failure when there is none yet, and a failure
   * learns the close code. Returns the failure; `end()` then lets readers finish.
   */
  closed(code: number, reason: string): TokstreamError | undefined {
    if (code !== 1000 && !this.failure) this.failure = new TokstreamError('connection_closed', `connection closed (${code}${reason ? ` ${reason}` : ''})`, true, code);
    else if (this.failure && this.failure.closeCode === undefined) {
      this.failure = new TokstreamError(this.failure.code, this.failure.message, true, code, this.failure.expectedFrame);
    }
    return this.failure;
  }

  /** No more items: readers get what is queued, then the failure or the end. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.queue.length > 0) {
        yield this.queue.shift()!;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
