/** A one-line progress bar on a TTY; silent elsewhere (logs, pipes, CI). */
export class Progress {
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly started = performance.now();
  private last = 0;

  constructor(private readonly label: string, private readonly total?: number) {}

  /** `done` in the same unit as total (seconds of audio here). */
  update(done: number): void {
    if (!this.tty) return;
    const now = performance.now();
    if (now - this.last < 100) return;
    this.last = now;
    const elapsed = (now - this.started) / 1000;
    const speed = elapsed > 0 ? done / elapsed : 0;
    let line = `${this.label} ${fmtTime(done)}`;
    if (this.total) {
      const frac = Math.min(1, done / this.total);
      const width = 24;
      const fill = Math.round(frac * width);
      const eta = speed > 0 ? (this.total - done) / speed : 0;
      line += ` / ${fmtTime(this.total)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0)}% ETA ${fmtTime(eta)}`;
    }
    line += ` ${speed.toFixed(1)}x real time`;
    process.stderr.write(`\r${line}\x1b[K`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}

function fmtTime(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}
