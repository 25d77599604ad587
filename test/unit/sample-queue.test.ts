import { describe, expect, it } from 'vitest';
import { ArrayQueue, SampleQueue } from '../../codec/pure/sample-queue.js';

const ramp = (from: number, n: number) => Float32Array.from({ length: n }, (_, i) => from + i);

describe('SampleQueue', () => {
  it('keeps absolute indices across growth and dropped heads', () => {
    const q = new SampleQueue(4);
    q.push(ramp(0, 3));
    q.push(ramp(3, 10)); // past the initial capacity
    expect(q.length).toBe(13);
    expect([...q.read(2, 6)]).toEqual([2, 3, 4, 5]);
    q.dropBefore(9);
    expect(q.held).toBe(4);
    expect(q.length).toBe(13);
    expect([...q.read(9, 13)]).toEqual([9, 10, 11, 12]);
    q.push(ramp(13, 2));
    expect([...q.read(12, 15)]).toEqual([12, 13, 14]);
  });

  it('zero-fills past the end and refuses what it already dropped', () => {
    const q = new SampleQueue(8);
    q.push(ramp(1, 4));
    expect([...q.read(2, 7)]).toEqual([3, 4, 0, 0, 0]);
    const out = new Float32Array(6).fill(-1);
    q.readInto(0, 2, out, 3);
    expect([...out]).toEqual([-1, -1, -1, 1, 2, -1]);
    q.dropBefore(2);
    expect(() => q.read(1, 3)).toThrow(RangeError);
    q.dropBefore(1); // dropping less than already dropped does nothing
    expect(q.held).toBe(2);
    q.dropBefore(100); // dropping past the end keeps the absolute length
    expect(q.held).toBe(0);
    expect(q.length).toBe(4);
  });

  it('holds integer codes too (the decoder keeps token frames in one)', () => {
    const q = new ArrayQueue(Int32Array, 2);
    q.push(Int32Array.of(7, 8, 9));
    expect(q.read(1, 3)).toEqual(Int32Array.of(8, 9));
  });
});
