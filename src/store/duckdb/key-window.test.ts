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
    expect(b.rows).toBe(2);
    expect(w.size).toBe(2);
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

  it('raises the floor past a batch whose given-back key another batch may have stored', () => {
    const w = new KeyWindow(10, 0);
    const b = w.begin();
    expect(w.claim(b, 'a', 5)).toBe(Claim.Covered);
    w.claim(b, 'b', 9);
    w.giveBack(b, 0);
    expect(w.floorMs).toBe(0);
    // Another batch counted its copy of `b` a repeat of this one's and may have stored it.
    w.giveBack(b, 1, true);
    expect(w.floorMs).toBe(9);
    expect(w.claim(w.begin(), 'b', 9)).toBe(Claim.CheckTable);
  });
});

describe('KeyWindow with kube-apiserver keys (UUID auditIDs held as words)', () => {
  const uuid = (n: number) =>
    `${n.toString(16).padStart(8, '0')}-0000-4000-8000-${(n * 7919).toString(16).padStart(12, '0')}`;
  const key = (n: number, stage = 'ResponseComplete') => `${uuid(n)}","stage":"${stage}`;
  const words = (n: number, stage: number) => {
    const hex = uuid(n).replaceAll('-', '');
    return Uint32Array.from(
      [0, 8, 16, 24].map((i) => Number.parseInt(hex.slice(i, i + 8), 16)).concat(stage),
    );
  };

  it('treats a key claimed as text and the same key claimed as words as one key', () => {
    const w = new KeyWindow(10, 0);
    const b = w.begin();
    expect(w.claim(b, key(1), 5)).toBe(Claim.Covered);
    expect(w.claimWords(b, words(1, 3), 0, 5)).toBe(Claim.Duplicate);
    expect(w.claimWords(b, words(1, 2), 0, 5)).toBe(Claim.Covered);
    expect(w.has(key(1, 'ResponseStarted'))).toBe(true);
    expect(w.claim(b, key(1, 'ResponseStarted'), 5)).toBe(Claim.Duplicate);
    // Upper-case hex is another auditID string, so another key (the table compares strings).
    expect(
      w.claim(
        b,
        key(1).toUpperCase().replace('","STAGE":"RESPONSECOMPLETE', '","stage":"ResponseComplete'),
        5,
      ),
    ).toBe(Claim.Covered);
    expect(w.size).toBe(3);
  });

  it('keeps keys with an unknown stage, even one named like an object property, as text', () => {
    const w = new KeyWindow(10, 0);
    const b = w.begin();
    for (const stage of ['constructor', '__proto__', 'toString', 'Finished']) {
      expect(w.claim(b, key(1, stage), 5)).toBe(Claim.Covered);
      expect(w.claim(b, key(1, stage), 5)).toBe(Claim.Duplicate);
      expect(w.has(key(1, stage))).toBe(true);
    }
    expect(w.size).toBe(4);
    for (let row = 0; row < 4; row++) w.giveBack(b, row);
    expect(w.size).toBe(0);
  });

  it('names the batch that holds a key when another claims it, for text keys and words alike', () => {
    const w = new KeyWindow(100, Number.NEGATIVE_INFINITY);
    const a = w.begin();
    const b = w.begin();
    w.claim(a, 'x-1","stage":"ResponseComplete', 1);
    w.claimWords(a, words(7, 3), 0, 1);
    expect(w.claim(b, 'x-1","stage":"ResponseComplete', 1)).toBe(Claim.Duplicate);
    expect(w.duplicateOf).toBe(a.id);
    expect(w.claim(b, key(7, 'ResponseComplete'), 1)).toBe(Claim.Duplicate);
    expect(w.duplicateOf).toBe(a.id);
    w.claimWords(b, words(8, 3), 0, 1);
    expect(w.claimWords(b, words(8, 3), 0, 1)).toBe(Claim.Duplicate);
    expect(w.duplicateOf).toBe(b.id);
    expect(a.id).not.toBe(b.id);
  });

  it('agrees with a plain Set through many claims, give-backs and let-goes', () => {
    // A small window and keys with colliding hash slots exercise growth and backward-shift deletion.
    const w = new KeyWindow(300, Number.NEGATIVE_INFINITY);
    const oracle = new Map<string, { batch: number; row: number }>();
    const batches: { b: ReturnType<KeyWindow['begin']>; keys: (string | null)[] }[] = [];
    let seed = 42;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const b = w.begin(8);
      const entry = { b, keys: [] as (string | null)[] };
      batches.push(entry);
      for (let i = 0; i < 20; i++) {
        const n = rand(2000);
        const k = key(n, rand(2) === 0 ? 'ResponseComplete' : 'ResponseStarted');
        const claim =
          rand(2) === 0
            ? w.claim(b, k, round)
            : w.claimWords(b, words(n, k.endsWith('Complete') ? 3 : 2), 0, round);
        expect(claim === Claim.Duplicate).toBe(oracle.has(k));
        // A duplicate names the batch holding the key, through table growth and deletions.
        if (claim === Claim.Duplicate) expect(w.duplicateOf).toBe(batches[oracle.get(k)?.batch ?? -1]?.b.id);
        if (claim !== Claim.Duplicate) {
          oracle.set(k, { batch: batches.length - 1, row: entry.keys.length });
          entry.keys.push(k);
        }
      }
      if (rand(4) === 0 && entry.keys.length > 0) {
        const row = rand(entry.keys.length);
        const k = entry.keys[row];
        w.giveBack(b, row);
        if (k !== null && k !== undefined) oracle.delete(k);
        entry.keys[row] = null;
      }
      w.settle(b);
      // settle() lets go of whole batches, oldest first: every key from the oldest batch still held
      // on must be there, every key from before it gone.
      let firstKept = Number.POSITIVE_INFINITY;
      for (const [k, v] of oracle) if (w.has(k)) firstKept = Math.min(firstKept, v.batch);
      for (const [k, v] of oracle) {
        expect(w.has(k)).toBe(v.batch >= firstKept);
        if (v.batch < firstKept) oracle.delete(k);
      }
      expect(w.size).toBe(oracle.size);
      expect(w.size).toBeLessThanOrEqual(300);
    }
    for (const [k] of oracle) expect(w.has(k)).toBe(true);
  });
});
