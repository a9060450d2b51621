interface Keyed {
  t: number;
  seq: number;
}

/** A binary min-heap ordered by time, then by insertion order so equal times stay deterministic. */
export class TimeHeap<T extends Keyed> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p];
      if (parent === undefined || !less(item, parent)) break;
      a[i] = parent;
      i = p;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    let i = 0;
    const n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const left = a[l];
      const right = a[l + 1];
      let c = l;
      let child = left;
      if (right !== undefined && left !== undefined && less(right, left)) {
        c = l + 1;
        child = right;
      }
      if (child === undefined || !less(child, last)) break;
      a[i] = child;
      i = c;
    }
    a[i] = last;
    return top;
  }
}

function less(a: Keyed, b: Keyed): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

/**
 * Two heaps with the order of one: items due within `horizon` of now go to a small heap, the
 * long-running rest (watch completions minutes ahead) to another, so most pushes and pops touch
 * a heap of a few hundred items instead of thousands.
 */
export class SplitTimeHeap<T extends Keyed> {
  private readonly near = new TimeHeap<T>();
  private readonly far = new TimeHeap<T>();

  constructor(private readonly horizon: number) {}

  get size(): number {
    return this.near.size + this.far.size;
  }

  push(item: T, now: number): void {
    if (item.t - now > this.horizon) this.far.push(item);
    else this.near.push(item);
  }

  peek(): T | undefined {
    const a = this.near.peek();
    const b = this.far.peek();
    if (a === undefined) return b;
    if (b === undefined) return a;
    return less(b, a) ? b : a;
  }

  pop(): T | undefined {
    const a = this.near.peek();
    const b = this.far.peek();
    if (a === undefined) return this.far.pop();
    if (b === undefined || less(a, b)) return this.near.pop();
    return this.far.pop();
  }
}
