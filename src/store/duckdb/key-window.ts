/**
 * The (auditID, stage) keys this store instance has written recently, so most batches can be
 * de-duplicated in memory instead of by an anti-join against the table.
 *
 * A duplicate is the same event again, so it carries the same stageTimestamp (the time used here:
 * events arrive in nearly that order, unlike requestReceivedTimestamp, which an hour-long watch's
 * ResponseComplete carries from an hour before). A key whose
 * time is after `floorMs` can only collide with a key written by this instance and still held here:
 * `floorMs` starts at the newest row stored before the instance opened and rises to the newest time
 * of every batch let go to bound memory. Keys at or before the floor must be checked in the table.
 *
 * Batches are let go oldest first and only once settled, so the keys of a batch still being imported
 * (which the table cannot show yet) are always here.
 *
 * kube-apiserver's auditIDs are lowercase UUIDs: those keys are held as five 32-bit words (the UUID
 * and the stage) in an open-addressing table, ~20 bytes each and no garbage, instead of a ~90-byte
 * string per key in a Set. Any other auditID (a client may send its own Audit-ID) keeps its string.
 * A key's form depends only on its text, so the same event always gets the same form.
 */

/**
 * Stage numbers of binary keys (0 would mark an empty slot). A Map: an object would also answer
 * for `constructor` or `__proto__`, stages a client could send.
 */
const STAGE_NUMBERS: ReadonlyMap<string, number> = new Map([
  ['RequestReceived', 1],
  ['ResponseStarted', 2],
  ['ResponseComplete', 3],
  ['Panic', 4],
]);

export enum Claim {
  Duplicate,
  Covered,
  CheckTable,
}

const KIND_NONE = 0;
const KIND_WORDS = 1;
const KIND_TEXT = 2;

/** Keys added for one batch, by staged row, so they can be given back or let go. */
export class WindowBatch {
  /** Per staged row: KIND_NONE, KIND_WORDS or KIND_TEXT. */
  kinds: Uint8Array;
  /** Per staged row with KIND_WORDS: its key, five words from 5 * row. */
  words: Uint32Array;
  /** Text keys by staged row. */
  readonly texts = new Map<number, string>();
  rows = 0;
  maxTsMs = Number.NEGATIVE_INFINITY;
  settled = false;

  constructor(
    expectedRows: number,
    /** Names the batch as the owner of its keys (KeyWindow.duplicateOf). */
    readonly id: number,
  ) {
    this.kinds = new Uint8Array(Math.max(16, expectedRows));
    this.words = new Uint32Array(5 * this.kinds.length);
  }

  /** Room for one more row; returns its number. */
  add(kind: number): number {
    if (this.rows === this.kinds.length) {
      const kinds = new Uint8Array(this.kinds.length * 2);
      kinds.set(this.kinds);
      this.kinds = kinds;
      const words = new Uint32Array(this.words.length * 2);
      words.set(this.words);
      this.words = words;
    }
    this.kinds[this.rows] = kind;
    return this.rows++;
  }
}

/** Five words from `from` at `at` to `to` at `o` (set() with a subarray would allocate a view). */
function copyKey(from: Uint32Array, at: number, to: Uint32Array, o: number): void {
  to[o] = from[at] as number;
  to[o + 1] = from[at + 1] as number;
  to[o + 2] = from[at + 2] as number;
  to[o + 3] = from[at + 3] as number;
  to[o + 4] = from[at + 4] as number;
}

/** Open addressing with linear probing over 5-word entries; word 4 (the stage) is 0 when empty. */
class WordSet {
  private slots: Uint32Array;
  /** Per slot: the id of the batch that holds the key. */
  private owners: Uint32Array;
  private mask: number;
  size = 0;
  // Audit IDs can come from clients (the Audit-ID header): a per-process seed keeps crafted IDs
  // from piling into one probe sequence.
  private readonly seed = (Math.random() * 0x100000000) >>> 0;

  constructor(expectedKeys: number) {
    let slots = 1024;
    while (slots < expectedKeys * 2) slots *= 2;
    this.slots = new Uint32Array(slots * 5);
    this.owners = new Uint32Array(slots);
    this.mask = slots - 1;
  }

  /** Owner of the entry add() last found already held. */
  lastOwner = 0;

  private slotOf(w: Uint32Array, at: number): number {
    let h = Math.imul((w[at] as number) ^ this.seed, 0x9e3779b1);
    h = Math.imul(h ^ (w[at + 1] as number) ^ (h >>> 15), 0x85ebca77);
    h = Math.imul(h ^ (w[at + 2] as number) ^ (h >>> 13), 0xc2b2ae3d);
    h ^= (w[at + 3] as number) ^ ((w[at + 4] as number) << 29);
    h = Math.imul(h ^ (h >>> 16), 0x27d4eb2f);
    return (h ^ (h >>> 15)) & this.mask;
  }

  private find(w: Uint32Array, at: number): number {
    const s = this.slots;
    let i = this.slotOf(w, at);
    for (;;) {
      const o = i * 5;
      if (s[o + 4] === 0) return -1 - i;
      if (
        s[o] === w[at] &&
        s[o + 1] === w[at + 1] &&
        s[o + 2] === w[at + 2] &&
        s[o + 3] === w[at + 3] &&
        s[o + 4] === w[at + 4]
      )
        return i;
      i = (i + 1) & this.mask;
    }
  }

  has(w: Uint32Array, at: number): boolean {
    return this.find(w, at) >= 0;
  }

  /** False when the key is held already (its owner is then in lastOwner). */
  add(w: Uint32Array, at: number, owner: number): boolean {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const f = this.find(w, at);
    if (f >= 0) {
      this.lastOwner = this.owners[f] as number;
      return false;
    }
    copyKey(w, at, this.slots, (-1 - f) * 5);
    this.owners[-1 - f] = owner;
    this.size++;
    return true;
  }

  delete(w: Uint32Array, at: number): void {
    let i = this.find(w, at);
    if (i < 0) return;
    const s = this.slots;
    // Backward-shift deletion: entries after the hole that would be found through it move in.
    let j = i;
    for (;;) {
      j = (j + 1) & this.mask;
      if (s[j * 5 + 4] === 0) break;
      const home = this.slotOf(s, j * 5);
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (between) continue;
      s.copyWithin(i * 5, j * 5, j * 5 + 5);
      this.owners[i] = this.owners[j] as number;
      i = j;
    }
    s.fill(0, i * 5, i * 5 + 5);
    this.size--;
  }

  private grow(): void {
    const old = this.slots;
    const oldOwners = this.owners;
    this.slots = new Uint32Array(old.length * 2);
    this.owners = new Uint32Array(oldOwners.length * 2);
    this.mask = (this.mask + 1) * 2 - 1;
    this.size = 0;
    for (let o = 0; o < old.length; o += 5)
      if (old[o + 4] !== 0) this.add(old, o, oldOwners[o / 5] as number);
  }
}

/** A key in words as text, for the rare comparisons of a duplicate with a key given back. */
function wordsName(w: Uint32Array, at: number): string {
  return `${w[at]}:${w[at + 1]}:${w[at + 2]}:${w[at + 3]}:${w[at + 4]}`;
}

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX[0x61 + i] = 10 + i;
const STAGE_SEPARATOR = '","stage":"';

/**
 * A key string `<auditID>","stage":"<stage>` (event-key.ts) as words when its auditID is a
 * lowercase UUID and its stage is known; false otherwise.
 */
function textToWords(key: string, out: Uint32Array): boolean {
  if (key.length < 36 + STAGE_SEPARATOR.length || !key.startsWith(STAGE_SEPARATOR, 36)) return false;
  const stage = STAGE_NUMBERS.get(key.slice(36 + STAGE_SEPARATOR.length));
  if (stage === undefined) return false;
  let w = 0;
  let n = 0;
  let k = 0;
  for (let i = 0; i < 36; i++) {
    const c = key.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 0x2d) return false;
      continue;
    }
    const v = c < 128 ? (HEX[c] as number) : -1;
    if (v < 0) return false;
    w = ((w << 4) | v) >>> 0;
    if (++n === 8) {
      out[k++] = w;
      w = 0;
      n = 0;
    }
  }
  out[4] = stage;
  return true;
}

export class KeyWindow {
  private readonly wordKeys: WordSet;
  /** Text keys and the id of the batch holding each. */
  private readonly textKeys = new Map<string, number>();
  private nextId = 1;
  /**
   * After a claim answered Duplicate: the id of the batch that holds the key (WindowBatch.id); the
   * claiming batch's own id when the key came twice in it.
   */
  duplicateOf = 0;
  /** After a claim answered Duplicate: the key's name, as keyName() gives it. */
  duplicateKey = '';
  private readonly batches: WindowBatch[] = [];
  private readonly scratch = new Uint32Array(5);
  private floor: number;

  constructor(
    private readonly capacity: number,
    floorMs: number,
  ) {
    this.floor = floorMs;
    this.wordKeys = new WordSet(capacity);
  }

  get floorMs(): number {
    return this.floor;
  }

  get size(): number {
    return this.wordKeys.size + this.textKeys.size;
  }

  /** A batch of about `expectedRows` rows (more are fine). */
  begin(expectedRows = 0): WindowBatch {
    const batch = new WindowBatch(expectedRows, this.nextId++);
    this.batches.push(batch);
    return batch;
  }

  has(key: string): boolean {
    return textToWords(key, this.scratch) ? this.wordKeys.has(this.scratch, 0) : this.textKeys.has(key);
  }

  /**
   * Records a staged row's key: Duplicate when the key is held already, else whether the window
   * vouches for the row (a row without a key never is vouched for).
   */
  claim(batch: WindowBatch, key: string | null, tsMs: number): Claim {
    if (key === null) {
      batch.add(KIND_NONE);
      return Claim.CheckTable;
    }
    if (textToWords(key, this.scratch)) return this.claimWords(batch, this.scratch, 0, tsMs);
    const owner = this.textKeys.get(key);
    if (owner !== undefined) {
      this.duplicateOf = owner;
      this.duplicateKey = key;
      return Claim.Duplicate;
    }
    this.textKeys.set(key, batch.id);
    batch.texts.set(batch.add(KIND_TEXT), key);
    return this.covered(batch, tsMs);
  }

  /** claim() for a key already in words: w[at..at+3] the UUID, w[at+4] its stage number. */
  claimWords(batch: WindowBatch, w: Uint32Array, at: number, tsMs: number): Claim {
    if (!this.wordKeys.add(w, at, batch.id)) {
      this.duplicateOf = this.wordKeys.lastOwner;
      this.duplicateKey = wordsName(w, at);
      return Claim.Duplicate;
    }
    // add() first: it may replace batch.words with a larger array.
    const row = batch.add(KIND_WORDS);
    copyKey(w, at, batch.words, row * 5);
    return this.covered(batch, tsMs);
  }

  /**
   * Whether the window vouches for a row of `batch` stage-timed at `tsMs` (Covered) or the table
   * must be checked; the time counts as the batch's when it is let go (the floor rises past it).
   * claim() does this for the copy it records; the store, for a repeat it may store instead.
   */
  covered(batch: WindowBatch, tsMs: number): Claim {
    if (tsMs > batch.maxTsMs) batch.maxTsMs = tsMs;
    return tsMs > this.floor ? Claim.Covered : Claim.CheckTable;
  }

  /** The name of a staged row's key, as duplicateKey names it; null for a row without one. */
  keyName(batch: WindowBatch, row: number): string | null {
    const kind = batch.kinds[row];
    if (kind === KIND_WORDS) return wordsName(batch.words, row * 5);
    if (kind === KIND_TEXT) return batch.texts.get(row) ?? null;
    return null;
  }

  /**
   * A staged row that was not stored after all (rejected): its key may come again, validly.
   * `mayBeStored`: another batch, which counted its copy of the key a repeat of this batch's, may
   * have stored it; then the floor rises past this batch's times, so a later copy is looked up in
   * the table.
   */
  giveBack(batch: WindowBatch, row: number, mayBeStored = false): void {
    this.forget(batch, row);
    batch.kinds[row] = KIND_NONE;
    if (mayBeStored && batch.maxTsMs > this.floor) this.floor = batch.maxTsMs;
  }

  private forget(batch: WindowBatch, row: number): void {
    const kind = batch.kinds[row];
    if (kind === KIND_WORDS) this.wordKeys.delete(batch.words, row * 5);
    else if (kind === KIND_TEXT) this.textKeys.delete(batch.texts.get(row) as string);
  }

  /**
   * The batch will not be written (again): its keys are forgotten, so a retry or a resend does not
   * count its rows as duplicates. `mayBeStored`: a write of it failed in a way that may have come
   * after its commit; then the floor rises past its rows' times, so a later batch with any of them
   * looks them up in the table.
   */
  abandon(batch: WindowBatch, mayBeStored = false): void {
    for (let row = 0; row < batch.rows; row++) this.forget(batch, row);
    if (mayBeStored && batch.maxTsMs > this.floor) this.floor = batch.maxTsMs;
    const i = this.batches.indexOf(batch);
    if (i >= 0) this.batches.splice(i, 1);
    this.trim();
  }

  /** The batch's rows are in the table (committed): it may be let go once the window is full. */
  settle(batch: WindowBatch): void {
    batch.settled = true;
    this.trim();
  }

  private trim(): void {
    while (this.size > this.capacity) {
      const head = this.batches[0];
      if (head === undefined || !head.settled) return;
      this.batches.shift();
      for (let row = 0; row < head.rows; row++) this.forget(head, row);
      if (head.maxTsMs > this.floor) this.floor = head.maxTsMs;
    }
  }
}
