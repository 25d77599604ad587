import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { logFailure } from './errors.js';
import type { JobSlots } from './job-slots.js';

/**
 * One bulk job's lifetime, tied to its HTTP exchange: a concurrency slot, an
 * abort signal that fires when the client goes away before the response is
 * complete (killing ffmpeg children and dropping queued batcher work), and
 * cleanups (spool files) that run when the exchange is over, however it ends.
 */
export class JobContext {
  readonly id = `http-${randomUUID()}`;
  private readonly controller = new AbortController();
  private readonly cleanups: (() => unknown)[] = [];
  /** The response was cut by us (a failure after the status line), not by the client. */
  private cut = false;

  constructor(private readonly reply: FastifyReply, slots: JobSlots) {
    const release = slots.acquire();
    this.cleanups.push(release);
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) {
        if (!this.cut) {
          // an ordinary event, logged once here with its reason (sendError stays quiet about it)
          const during = reply.request.raw.complete ? 'while the response was being sent' : 'during the upload';
          reply.log.info({ job: this.id, reason: `client closed the connection ${during}` }, 'request aborted by the client');
        }
        this.controller.abort();
      }
      void this.finish();
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  onFinish(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  /**
   * The response body. A failure after the status line went out cannot change the status: the
   * transfer is cut short (no terminating chunk), so the client sees it incomplete; the failure is
   * logged as sendError would log it. After an abort the body just ends: the client is gone.
   */
  responseBody(chunks: AsyncGenerator<Uint8Array>): Readable {
    return Readable.from(this.cutOnFailure(chunks), { objectMode: false });
  }

  private async *cutOnFailure(chunks: AsyncGenerator<Uint8Array>): AsyncGenerator<Uint8Array> {
    try {
      yield* chunks;
    } catch (e) {
      if (this.signal.aborted) return;
      this.cut = true;
      logFailure(e, this.reply.request);
      this.reply.raw.destroy();
    }
  }

  private async finish(): Promise<void> {
    // nothing of this job may outlive the exchange
    this.controller.abort();
    for (const fn of this.cleanups.splice(0)) await Promise.resolve().then(fn).catch(() => {});
  }
}

const jobs = new WeakMap<FastifyRequest, JobContext>();

/**
 * An onRequest hook that takes the job's slot from the headers alone, before a byte of the body
 * is read: an overloaded server answers 503 at once instead of after receiving an upload it
 * will not process.
 */
export function admitJob(slots: JobSlots): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    jobs.set(request, new JobContext(reply, slots));
  };
}

/** The job `admitJob` started for this request. */
export function jobOf(request: FastifyRequest): JobContext {
  const job = jobs.get(request);
  if (!job) throw new Error('route has no admitJob hook');
  return job;
}

/**
 * Waits for the first item before anything is sent, so errors found early
 * (format, model, first window) still get a proper status; then streams the rest.
 */
export async function startStream<T>(items: AsyncGenerator<T>): Promise<AsyncGenerator<T>> {
  const first = await items.next();
  return (async function* () {
    try {
      if (first.done) return;
      yield first.value;
      yield* items;
    } finally {
      await items.return(undefined as never);
    }
  })();
}

