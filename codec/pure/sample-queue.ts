type NumArray = Float32Array | Int32Array;
type NumArrayCtor<T extends NumArray> = new (n: number) => T;

/**
 * An append-only numeric sequence that forgets its head: indices are absolute
 * (counted from the start of the stream), memory holds only [base, length).
 */
export class ArrayQueue<T extends NumArray> {
  private buf: T;
  private base = 0; // absolute index of buf[0]
  private used = 0; // valid elements in buf

  constructor(private readonly ctor: NumArrayCtor<T>, initialCapacity = 1 << 12) {
    this.buf = new ctor(initialCapacity);
  }

  /** Absolute length: everything ever pushed. */
  get length(): number {
    return this.base + this.used;
  }

  /** Elements held in memory. */
  get held(): number {
    return this.used;
  }

  push(data: T): void {
    if (this.used + data.length > this.buf.length) {
      const next = new this.ctor(Math.max(this.buf.length * 2, this.used + data.length));
      next.set(this.buf.subarray(0, this.used) as never);
      this.buf = next;
    }
    this.buf.set(data as never, this.used);
    this.used += data.length;
  }

  /** Copies absolute range [start, end) into `out` at `offset`; positions past `length` stay zero. */
  readInto(start: number, end: number, out: T, offset = 0): void {
    if (start < this.base) throw new RangeError(`index ${start} already dropped (kept from ${this.base})`);
    const from = start - this.base;
    const to = Math.min(end, this.length) - this.base;
    if (to > from) out.set(this.buf.subarray(from, to) as never, offset);
  }

  read(start: number, end: number): T {
    const out = new this.ctor(end - start);
    this.readInto(start, end, out);
    return out;
  }

  /** Forgets everything before absolute index `index`. */
  dropBefore(index: number): void {
    const n = Math.min(index - this.base, this.used);
    if (n <= 0) return;
    this.buf.copyWithin(0, n, this.used);
    this.used -= n;
    this.base += n;
  }
}

export class SampleQueue extends ArrayQueue<Float32Array> {
  constructor(initialCapacity = 1 << 15) {
    super(Float32Array, initialCapacity);
  }
}
