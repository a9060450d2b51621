/** A one-line progress bar on stderr, only on a TTY: rate, bytes, ETA. */
export interface ProgressState {
  bytesRead: number;
  bytesTotal: number | null;
  events: number;
  stored?: number;
  elapsedMs: number;
}

function mb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MB`;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s % 60)}s` : `${Math.round(s)}s`;
}

export function formatProgress(p: ProgressState, width = 24): string {
  const secs = Math.max(p.elapsedMs / 1000, 1e-3);
  const rate = Math.round(p.events / secs);
  const stored = p.stored === undefined ? '' : `  ${p.stored} stored`;
  if (p.bytesTotal === null || p.bytesTotal === 0) {
    return `${p.events} events read${stored}  ${mb(p.bytesRead)}  ${rate} ev/s`;
  }
  const frac = Math.min(1, p.bytesRead / p.bytesTotal);
  const filled = Math.round(frac * width);
  const eta = frac > 0 ? secs / frac - secs : Number.POSITIVE_INFINITY;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0)}%  ${p.events} events read${stored}  ${mb(p.bytesRead)}/${mb(p.bytesTotal)}  ${rate} ev/s  ETA ${duration(eta)}`;
}

export class ProgressBar {
  private last = 0;
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  get enabled(): boolean {
    return Boolean(this.stream.isTTY);
  }

  update(p: ProgressState): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 200) return;
    this.last = now;
    this.stream.write(`\r\x1b[2K${formatProgress(p)}`);
  }

  done(): void {
    if (this.enabled) this.stream.write('\r\x1b[2K');
  }
}
