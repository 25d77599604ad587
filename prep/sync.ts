/** Counting semaphore: bounds how many items are being decoded and encoded at once. */
export class Semaphore {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}

  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiters.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/**
 * Runs `run` over items with up to `ahead` started beyond the one being
 * consumed, and hands results to `consume` strictly in input order.
 */
export async function forEachOrdered<T, R>(items: T[], ahead: number, run: (item: T, i: number) => Promise<R>, consume: (r: R, item: T, i: number) => Promise<void>): Promise<void> {
  const started: (Promise<R> | undefined)[] = [];
  let next = 0;
  for (let c = 0; c < items.length; c++) {
    while (next < items.length && next < c + Math.max(1, ahead)) {
      const i = next++;
      const p = run(items[i], i);
      p.catch(() => {}); // awaited in order below
      started[i] = p;
    }
    const r = await started[c]!;
    started[c] = undefined;
    await consume(r, items[c], c);
  }
}
