import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';

describe('ManualClock', () => {
  it('fires timers in due order as time is advanced, each at its own time, and never a cleared one', async () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 50);
    clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
    const cleared = clock.setTimeout(() => fired.push('cleared'), 20);
    clock.clearTimeout(cleared);
    await clock.advance(30);
    expect(fired).toEqual(['a@1010']);
    expect(clock.now()).toBe(1030);
    await clock.advance(100);
    expect(fired).toEqual(['a@1010', 'b@1050']);
    expect(clock.pending).toBe(0);
  });

  it('fires a timer set by a timer within the same advance when it comes due', async () => {
    const clock = new ManualClock(0);
    const at: number[] = [];
    const tick = (): void => {
      at.push(clock.now());
      if (at.length < 3) clock.setTimeout(tick, 100);
    };
    clock.setTimeout(tick, 100);
    await clock.advance(1000);
    expect(at).toEqual([100, 200, 300]);
  });
});
