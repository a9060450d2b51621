/**
 * Where the collectors get time: now() and timers. The agent runs on the system clock; tests pass a
 * ManualClock and move time themselves, so that no test waits on the wall clock for a flush
 * interval, a backoff or a timeout to run out.
 */
export interface Clock {
  /** Milliseconds since the epoch (Date.now()). */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** A timer of either clock: opaque to callers. */
export type ClockTimer = { readonly clockTimer: true } | NodeJS.Timeout;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

interface ManualTimer {
  readonly clockTimer: true;
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that moves only when told to (tests); timers fire in order of due time, then of creation. */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private readonly timers = new Set<ManualTimer>();

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const t: ManualTimer = { clockTimer: true, at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(t);
    return t;
  }

  clearTimeout(timer: ClockTimer): void {
    this.timers.delete(timer as ManualTimer);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms`, firing each timer that comes due at its own time; after each, the
   * event loop runs until idle enough for the code it woke to set its next timer.
   */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      let next: ManualTimer | undefined;
      for (const t of this.timers)
        if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq)))
          next = t;
      if (next === undefined) break;
      this.timers.delete(next);
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    this.time = end;
    await settle();
  }
}

/** Lets promise chains and I/O callbacks that are already due run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
