import { describe, expect, it } from 'vitest';
import { Claim, KeyWindow } from './key-window.js';

describe('KeyWindow', () => {
  it('vouches only for keys newer than the rows stored before it opened', () => {
    const w = new KeyWindow(10, 1000);
    const b = w.begin();
    expect(w.claim(b, 'a', 1001)).toBe(Claim.Covered);
    expect(w.claim(b, 'b', 1000)).toBe(Claim.CheckTable);
    expect(w.claim(b, null, 5000)).toBe(Claim.CheckTable);
    expect(w.has('a')).toBe(true);
    expect(w.has('b')).toBe(true);
  });

  it('claims a key once: later claims of it are duplicates', () => {
    const w = new KeyWindow(10, 1000);
    const b = w.begin();
    expect(w.claim(b, 'a', 2000)).toBe(Claim.Covered);
    expect(w.claim(b, 'a', 2000)).toBe(Claim.Duplicate);
    expect(w.claim(b, 'b', 900)).toBe(Claim.CheckTable);
    expect(b.keys).toEqual(['a', 'b']);
  });

  it('lets settled batches go oldest first and raises the floor to their newest time', () => {
    const w = new KeyWindow(2, Number.NEGATIVE_INFINITY);
    const b1 = w.begin();
    w.claim(b1, 'a', 100);
    w.claim(b1, 'b', 300);
    const b2 = w.begin();
    w.claim(b2, 'c', 200);
    // b1 is still importing: its keys stay, whatever the capacity.
    w.settle(b2);
    expect(w.size).toBe(3);
    expect(w.floorMs).toBe(Number.NEGATIVE_INFINITY);
    w.settle(b1);
    expect(w.has('a')).toBe(false);
    expect(w.has('c')).toBe(true);
    expect(w.floorMs).toBe(300);
    const b3 = w.begin();
    expect(w.claim(b3, 'd', 250)).toBe(Claim.CheckTable);
    expect(w.claim(b3, 'e', 301)).toBe(Claim.Covered);
  });

  it('forgets the keys of a failed batch, so a retry is not taken for duplicates', () => {
    const w = new KeyWindow(10, 0);
    const b = w.begin();
    w.claim(b, 'a', 5);
    w.abandon(b);
    expect(w.has('a')).toBe(false);
    expect(w.size).toBe(0);
  });

  it('gives back the key of a rejected row without touching the row that claims it next', () => {
    const w = new KeyWindow(0, 0);
    const b1 = w.begin();
    w.claim(b1, 'a', 5);
    w.giveBack(b1, 0);
    expect(w.has('a')).toBe(false);
    const b2 = w.begin();
    w.claim(b2, 'a', 6);
    w.settle(b1);
    expect(w.has('a')).toBe(true);
  });
});
