import { HttpApiError } from './errors.js';

/**
 * Caps concurrent bulk jobs. A job beyond the cap is refused at once (503 +
 * Retry-After) rather than queued: a queue of hour-long uploads would hold
 * sockets and spool space while promising nothing.
 */
export class JobSlots {
  private running = 0;

  constructor(readonly max: number, private readonly retryAfterSec: number) {}

  get active(): number {
    return this.running;
  }

  /** Takes a slot or throws 503; the returned function frees it (idempotent). */
  acquire(): () => void {
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
