/**
 * Results of work submitted in order, awaited in order, with a few in flight so
 * the batcher can stack one job's next window while the previous one runs.
 */
export class Ordered<T> {
  private readonly queue: Promise<T>[] = [];

  get size(): number {
    return this.queue.length;
  }

  add(p: Promise<T>): void {
    p.catch(() => {}); // a rejection is seen when its turn comes (or never, if the job ends first)
    this.queue.push(p);
  }

  /** The oldest result; undefined when nothing is pending. */
  async next(): Promise<T | undefined> {
    return this.queue.shift();
  }
}
