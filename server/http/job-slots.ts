import type { Drain } from '../drain.js';
import { HttpApiError } from './errors.js';

/**
 * Caps concurrent bulk jobs and counts the running ones. A job beyond the cap is refused at once (503 +
 * Retry-After) rather than queued: a queue of hour-long uploads would hold
 * sockets and spool space while promising nothing.
 */
export class JobSlots {
  private running = 0;

  /** With a drain: once it begins, new jobs get 503 `draining`; the drain waits for running ones. */
  constructor(readonly max: number, private readonly retryAfterSec: number, private readonly drain?: Drain) {
    drain?.track('httpJobs', () => this.running);
  }

  get active(): number {
    return this.running;
  }

  /** Takes a slot or throws 503; the returned function frees it (idempotent). */
  acquire(): () => void {
    if (this.drain?.draining) {
      throw new HttpApiError(503, 'draining', 'server is draining: send new jobs to another server', this.retryAfterSec);
    }
    if (this.running >= this.max) {
      throw new HttpApiError(503, 'overloaded', `server busy: ${this.max} jobs already running, retry later`, this.retryAfterSec);
    }
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
    };
  }
}
