import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
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

  constructor(reply: FastifyReply, slots: JobSlots) {
    const release = slots.acquire();
    this.cleanups.push(release);
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) this.controller.abort();
      void this.finish();
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  onFinish(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  private async finish(): Promise<void> {
    // nothing of this job may outlive the exchange
    this.controller.abort();
    for (const fn of this.cleanups.splice(0)) await Promise.resolve().then(fn).catch(() => {});
  }
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

export function byteStream(chunks: AsyncGenerator<Uint8Array>): Readable {
  return Readable.from(chunks, { objectMode: false });
}
