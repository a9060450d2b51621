import { describe, expect, it } from 'vitest';
import { InsertedWindow, timeIntervals } from './inserted-window.js';

describe('timeIntervals', () => {
  it('cuts at gaps wider than asked, so an old event does not stretch the range', () => {
    expect(timeIntervals([5, 1, 3, 100, 102, 2], 10, 8)).toEqual([
      [1, 5],
      [100, 102],
    ]);
    expect(timeIntervals([], 10, 8)).toEqual([]);
    expect(timeIntervals([7], 10, 8)).toEqual([[7, 7]]);
  });

  it('keeps the widest gaps as cuts when there would be too many intervals', () => {
    expect(timeIntervals([0, 20, 40, 1000, 1020, 5000], 10, 3)).toEqual([
      [0, 40],
      [1000, 1020],
      [5000, 5000],
    ]);
  });
});

describe('InsertedWindow', () => {
  it('counts its rows in intervals, ends included, and knows their keys', () => {
    const w = new InsertedWindow(100);
    w.add([30, 10, 20], ['c', 'a', 'b']);
    w.add([20, 40], ['d', 'e']);
    expect(w.countIn([[10, 20]])).toBe(3);
    expect(
      w.countIn([
        [11, 19],
        [40, 40],
      ]),
    ).toBe(1);
    expect(w.countIn([[41, 50]])).toBe(0);
    expect(w.has('d')).toBe(true);
    expect(w.has('z')).toBe(false);
  });

  it('forgets the oldest batches beyond its size, keeping the newest', () => {
    const w = new InsertedWindow(3);
    w.add([1, 2], ['a', 'b']);
    w.add([3, 4], ['c', 'd']);
    expect(w.has('a')).toBe(false);
    expect(w.countIn([[0, 10]])).toBe(2);
    w.add([5, 6, 7, 8], ['e', 'f', 'g', 'h']);
    expect(w.has('c')).toBe(false);
    expect(w.countIn([[0, 10]])).toBe(4);
  });
});
