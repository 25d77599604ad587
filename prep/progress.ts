/** One-line progress on a TTY: audio hours done, speed in × real time, ETA by input bytes. */
export class PrepProgress {
  private readonly started = performance.now();
  private last = 0;
  private seconds = 0;
  private bytes = 0;
  private items = 0;
  private failed = 0;

  constructor(private readonly totalBytes: number, private readonly totalItems: number, private readonly tty = Boolean(process.stderr.isTTY)) {}

  add(seconds: number, bytes: number, failed: boolean): void {
    this.seconds += seconds;
    this.bytes += bytes;
    this.items++;
    if (failed) this.failed++;
    const now = performance.now();
    if (!this.tty || now - this.last < 200) return;
    this.last = now;
    process.stderr.write(`\rprep ${this.line()}\x1b[K`);
  }

  line(): string {
    const elapsed = (performance.now() - this.started) / 1000;
    const frac = this.totalBytes > 0 ? Math.min(1, this.bytes / this.totalBytes) : 1;
    const eta = frac > 0 ? (elapsed * (1 - frac)) / frac : NaN;
    return (
      `${(this.seconds / 3600).toFixed(3)} h audio | ${(elapsed > 0 ? this.seconds / elapsed : 0).toFixed(1)}x real time | ` +
      `${(frac * 100).toFixed(0)}% | ETA ${fmt(eta)} | ${this.items}/${this.totalItems} inputs | ${this.failed} failed`
    );
  }

  done(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}

function fmt(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return `${h ? `${h}:` : ''}${String(m).padStart(h ? 2 : 1, '0')}:${String(sec).padStart(2, '0')}`;
}
