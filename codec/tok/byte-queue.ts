/** Bytes that arrive in pieces; hands out contiguous views, copying only across piece boundaries. */
export class ByteQueue {
  private pieces: Uint8Array[] = [];
  private head = 0;
  length = 0;

  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.pieces.push(b);
    this.length += b.length;
  }

  peek(n: number): Uint8Array {
    const first = this.pieces[0];
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    let start = this.head;
    while (filled < n) {
      const take = Math.min(n - filled, this.pieces[i].length - start);
      out.set(this.pieces[i].subarray(start, start + take), filled);
      filled += take;
      i++;
      start = 0;
    }
    return out;
  }

  skip(n: number): void {
    this.length -= n;
    let drop = 0;
    let head = this.head;
    while (n > 0) {
      const left = this.pieces[drop].length - head;
      if (n < left) {
        head += n;
        break;
      }
      n -= left;
      drop++;
      head = 0;
    }
    this.pieces.splice(0, drop);
    this.head = head;
  }
}
