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
    w.add([30, 10, 20], ['c', 'a', 'b'], ['ResponseComplete', 'ResponseComplete', 'ResponseComplete']);
    w.add([20, 40], ['d', 'e'], ['ResponseStarted', 'ResponseComplete']);
    expect(w.countIn([[10, 20]])).toBe(3);
    expect(
      w.countIn([
        [11, 19],
        [40, 40],
      ]),
    ).toBe(1);
    expect(w.countIn([[41, 50]])).toBe(0);
    expect(w.has('d', 'ResponseStarted')).toBe(true);
    // The same auditID at another stage is another row.
    expect(w.has('d', 'ResponseComplete')).toBe(false);
    expect(w.has('a', 'ResponseComplete')).toBe(true);
    expect(w.has('z', 'ResponseComplete')).toBe(false);
  });

  it('forgets the oldest batches beyond its size, keeping the newest', () => {
    const w = new InsertedWindow(3);
    const rc = (n: number) => new Array<string>(n).fill('ResponseComplete');
    w.add([1, 2], ['a', 'b'], rc(2));
    w.add([3, 4], ['c', 'd'], rc(2));
    expect(w.has('a', 'ResponseComplete')).toBe(false);
    expect(w.has('c', 'ResponseComplete')).toBe(true);
    expect(w.countIn([[0, 10]])).toBe(2);
    w.add([5, 6, 7, 8], ['e', 'f', 'g', 'h'], rc(4));
    expect(w.has('c', 'ResponseComplete')).toBe(false);
    expect(w.countIn([[0, 10]])).toBe(4);
  });

  it('counts a key held by two batches until both have left', () => {
    const w = new InsertedWindow(4);
    w.add([1, 2], ['a', 'a'], ['RequestReceived', 'ResponseComplete']);
    w.add([3], ['a'], ['ResponseComplete']);
    w.add([4, 5], ['x', 'y'], ['Panic', 'Panic']);
    // The first batch left: its RequestReceived row is gone, its ResponseComplete is still held by the second.
    expect(w.has('a', 'RequestReceived')).toBe(false);
    expect(w.has('a', 'ResponseComplete')).toBe(true);
    expect(w.has('x', 'Panic')).toBe(true);
    w.add([6, 7], ['z', 'w'], ['Panic', 'Panic']);
    expect(w.has('a', 'ResponseComplete')).toBe(false);
  });
});
