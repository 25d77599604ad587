import { describe, expect, it } from 'vitest';
import { WindowPlanner, type Window } from '../../codec/pure/window-plan.js';

/** Every window the planner gives while `available` grows by `step` up to `total`. */
function windowsWhileGrowing(plan: WindowPlanner, total: number, step: number): { window: Window; available: number }[] {
  const out: { window: Window; available: number }[] = [];
  for (let available = 0; ; available = Math.min(total, available + step)) {
    const final = available === total;
    for (let w = plan.nextWindow(available, final); w; w = plan.nextWindow(available, final)) out.push({ window: w, available });
    if (final) return out;
  }
}

describe('WindowPlanner', () => {
  it('emits every unit once, in order, with the declared context and one window length', () => {
    for (const [left, chunk, right] of [[0, 1, 0], [13, 4, 2], [5, 50, 0], [40, 3, 1]]) {
      const plan = new WindowPlanner(left, chunk, right);
      const total = 137;
      let next = 0;
      const lengths = new Set<number>();
      for (let avail = 0; ; avail = Math.min(total, avail + 7)) {
        const final = avail === total;
        for (let w = plan.nextWindow(avail, final); w; w = plan.nextWindow(avail, final)) {
          expect(w.emitStart).toBe(next);
          expect(w.emitStart - w.start >= left || w.start === 0).toBe(true);
          expect(w.end - w.emitEnd >= right || w.end === total).toBe(true);
          lengths.add(w.end - w.start);
          next = w.emitEnd;
        }
        if (final) break;
      }
      expect(next).toBe(total);
      expect([...lengths]).toEqual([left + chunk + right]);
    }
  });

  it('with tightFinal, ends with a window that holds only the left context it needs', () => {
    for (const [left, chunk, right] of [[13, 4, 2], [5, 50, 0], [40, 3, 1]]) {
      for (const total of [1, 20, 137, 300]) {
        const plan = new WindowPlanner(left, chunk, right, { tightFinal: true });
        const windows: NonNullable<ReturnType<typeof plan.nextWindow>>[] = [];
        for (let w = plan.nextWindow(total, true); w; w = plan.nextWindow(total, true)) windows.push(w);
        expect(windows.at(-1)!.emitEnd).toBe(total);
        windows.forEach((w, i) => {
          expect(w.emitStart).toBe(i === 0 ? 0 : windows[i - 1].emitEnd);
          if (i < windows.length - 1) expect(w.end - w.start).toBe(left + chunk + right);
        });
        const last = windows.at(-1)!;
        expect(last.start).toBe(Math.max(0, last.emitStart - left));
        // the work saved: units fed beyond those emitted are at most one context per window
        const fed = windows.reduce((s, w) => s + w.end - w.start, 0);
        expect(fed - total).toBeLessThanOrEqual(windows.length * (left + right));
      }
    }
  });
});

describe('WindowPlanner streaming start and flush', () => {
  it('with eagerStart, emits the first chunk once it and its right context exist, from 0, then settles into full windows', () => {
    const [left, chunk, right] = [10, 2, 1];
    const eager = windowsWhileGrowing(new WindowPlanner(left, chunk, right, { eagerStart: true }), 40, 1);
    const lazy = windowsWhileGrowing(new WindowPlanner(left, chunk, right), 40, 1);
    expect(eager[0]).toEqual({ window: { start: 0, end: chunk + right, emitStart: 0, emitEnd: chunk }, available: chunk + right });
    expect(lazy[0].available).toBe(left + chunk + right);
    // the same units come out, each once, in order
    expect(eager.map((e) => [e.window.emitStart, e.window.emitEnd]).flat()).toEqual(eager.map((_, i) => [i * chunk, (i + 1) * chunk]).flat().map((v) => Math.min(v, 40)));
    for (const { window: w, available } of eager) {
      if (w.end < left + chunk + right) expect(w.start).toBe(0); // short windows only while the stream is short
      else expect(w.end - w.start).toBe(left + chunk + right);
      expect(w.end).toBeLessThanOrEqual(available);
    }
  });

  it('flushWindow emits what has its right context, with full left context, and later windows continue after it', () => {
    const plan = new WindowPlanner(4, 8, 2);
    expect(plan.nextWindow(7, false)).toBeNull();
    expect(plan.flushWindow(7)).toEqual({ start: 0, end: 7, emitStart: 0, emitEnd: 5 });
    expect(plan.flushWindow(7)).toBeNull(); // nothing new
    expect(plan.emitted).toBe(5);
    expect(plan.nextWindow(20, false)).toEqual({ start: 1, end: 15, emitStart: 5, emitEnd: 13 });
    expect(plan.keepFrom).toBe(0);
    expect(plan.nextWindow(20, true)).toEqual({ start: 6, end: 20, emitStart: 13, emitEnd: 20 });
    expect(plan.keepFrom).toBe(6); // one window's length before the next unit
    expect(plan.nextWindow(20, true)).toBeNull();
  });

  it('refuses an empty chunk', () => {
    expect(() => new WindowPlanner(4, 0, 2)).toThrow(RangeError);
  });
});
