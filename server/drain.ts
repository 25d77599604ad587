/** How a drain ended: everything it waited for finished, or the deadline came first. */
export interface DrainResult {
  outcome: 'finished' | 'deadline';
  /** Work still running when the drain ended, by kind (all zero when finished). */
  pending: Record<string, number>;
  elapsedMs: number;
}

const POLL_MS = 50;

/**
 * Graceful drain (docs/deploy.md, "Draining"). Once begun, the parts of the server refuse new
 * work with a typed `draining` error (streams, publishers and room joins) or 503 (HTTP jobs) and
 * tell their open connections; the drain then waits until the work it tracks is gone or
 * `timeoutMs` has passed. Closing what is left is the caller's job (app.close(), which marks the
 * drain `closing`).
 */
export class Drain {
  private begunAt: number | undefined;
  private closed = false;
  private result: Promise<DrainResult> | undefined;
  private readonly counters = new Map<string, () => number>();
  private readonly listeners: ((closeInMs: number) => void)[] = [];

  constructor(readonly timeoutMs: number) {}

  get draining(): boolean {
    return this.begunAt !== undefined;
  }

  /** The server is closing (app.close()), drained first or not: it accepts nothing new. */
  get closing(): boolean {
    return this.closed;
  }

  markClosing(): void {
    this.closed = true;
  }

  /** Milliseconds left before what still runs is closed (0 when not draining or past the deadline). */
  get closeInMs(): number {
    return this.begunAt === undefined ? 0 : Math.max(0, Math.round(this.begunAt + this.timeoutMs - Date.now()));
  }

  /** Work the drain waits for: `count()` is how much of `kind` is running now. */
  track(kind: string, count: () => number): void {
    if (this.counters.has(kind)) throw new Error(`drain already tracks ${kind}`);
    this.counters.set(kind, count);
  }

  /** Called once when the drain begins, with the time left before the deadline. */
  onBegin(fn: (closeInMs: number) => void): void {
    this.listeners.push(fn);
  }

  pending(): Record<string, number> {
    return Object.fromEntries([...this.counters].map(([kind, count]) => [kind, count()]));
  }

  /** Starts draining (a second call returns the same result). */
  begin(): Promise<DrainResult> {
    if (this.result) return this.result;
    const begunAt = Date.now();
    this.begunAt = begunAt;
    for (const fn of this.listeners) fn(this.timeoutMs);
    this.result = new Promise((resolve) => {
      const check = () => {
        const pending = this.pending();
        const busy = Object.values(pending).some((n) => n > 0);
        const elapsedMs = Date.now() - begunAt;
        if (!busy || elapsedMs >= this.timeoutMs) return resolve({ outcome: busy ? 'deadline' : 'finished', pending, elapsedMs });
        setTimeout(check, Math.min(POLL_MS, this.timeoutMs - elapsedMs));
      };
      check();
    });
    return this.result;
  }
}
