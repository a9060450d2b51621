/**
 * State of the stateful rule kinds (threshold, new term, sequence), kept per key with a cap: when
 * a rule holds more keys than `maxKeys`, the least recently used key is forgotten. Windows follow
 * the events' own timestamps, so a backtest over history fires as the live agent would have.
 *
 * Memory per key, roughly: threshold holds at most `count` entries (an auditID and a time, ~150
 * bytes each); new term holds up to MAX_TERMS_PER_KEY values; sequence holds one auditID per step.
 */
import type { EventContext } from './fields.js';
import type { NewTerm, Sequence, Threshold } from './rule.js';

export const DEFAULT_MAX_KEYS = 100_000;
/** A key that has shown this many distinct values learns no more (it would fire on every new one). */
export const MAX_TERMS_PER_KEY = 10_000;

export type KeyOf = (ctx: EventContext) => string | undefined;

/** What a stateful rule reports when it fires: the events that together made it fire. */
export interface Firing {
  auditIDs: string[];
}

export interface StatefulMatcher {
  /** Called with each event the rule's condition (and allowlist) let through. */
  offer(ctx: EventContext): Firing | undefined;
  /** Keys held, for stats. */
  readonly size: number;
}

/** A Map used as an LRU cache: reading a key makes it the newest. */
class KeyedState<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly maxKeys: number) {}

  get(key: string): T | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, v: T): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.maxKeys) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}

interface Seen {
  t: number;
  id: string;
}

export function thresholdMatcher(
  t: Threshold,
  keyOf: KeyOf,
  distinctOf: KeyOf | undefined,
  maxKeys = DEFAULT_MAX_KEYS,
): StatefulMatcher {
  // Count mode: the events in the window, oldest first. Distinct mode: the newest event of each
  // distinct value, in the order last seen.
  const state = new KeyedState<Map<string, Seen>>(maxKeys);
  let serial = 0;
  return {
    offer(ctx) {
      const key = keyOf(ctx);
      if (key === undefined) return undefined;
      const value = distinctOf === undefined ? String(serial++) : distinctOf(ctx);
      if (value === undefined) return undefined;
      const now = ctx.timeMs;
      let seen = state.get(key);
      if (seen === undefined) {
        seen = new Map();
        state.set(key, seen);
      }
      for (const [v, s] of seen) {
        if (s.t >= now - t.windowMs) break;
        seen.delete(v);
      }
      seen.delete(value);
      seen.set(value, { t: now, id: ctx.event.auditID });
      if (seen.size < t.count) return undefined;
      state.delete(key);
      return { auditIDs: [...seen.values()].map((s) => s.id) };
    },
    get size() {
      return state.size;
    },
  };
}

export function newTermMatcher(
  n: NewTerm,
  keyOf: KeyOf,
  termOf: KeyOf,
  maxKeys = DEFAULT_MAX_KEYS,
): StatefulMatcher {
  const state = new KeyedState<Set<string>>(maxKeys);
  let learnUntil: number | undefined;
  return {
    offer(ctx) {
      const key = keyOf(ctx);
      const value = termOf(ctx);
      if (key === undefined || value === undefined) return undefined;
      const now = ctx.timeMs;
      if (learnUntil === undefined) learnUntil = now + n.learnMs;
      let terms = state.get(key);
      if (terms === undefined) {
        terms = new Set();
        state.set(key, terms);
      }
      if (terms.has(value)) return undefined;
      if (terms.size >= MAX_TERMS_PER_KEY) return undefined;
      terms.add(value);
      if (now < learnUntil) return undefined;
      return { auditIDs: [ctx.event.auditID] };
    },
    get size() {
      return state.size;
    },
  };
}

interface Progress {
  step: number;
  start: number;
  ids: string[];
}

export function sequenceMatcher(
  s: Sequence,
  steps: readonly ((ctx: EventContext) => boolean)[],
  keyOf: KeyOf,
  maxKeys = DEFAULT_MAX_KEYS,
): StatefulMatcher {
  return s.ordered ? orderedMatcher(s, steps, keyOf, maxKeys) : unorderedMatcher(s, steps, keyOf, maxKeys);
}

function orderedMatcher(
  s: Sequence,
  steps: readonly ((ctx: EventContext) => boolean)[],
  keyOf: KeyOf,
  maxKeys: number,
): StatefulMatcher {
  const state = new KeyedState<Progress>(maxKeys);
  const first = steps[0] as (ctx: EventContext) => boolean;
  return {
    offer(ctx) {
      const key = keyOf(ctx);
      if (key === undefined) return undefined;
      const now = ctx.timeMs;
      let p = state.get(key);
      if (p !== undefined && now - p.start > s.windowMs) {
        state.delete(key);
        p = undefined;
      }
      // An event that completes the next step is progress; else it may start the sequence anew.
      if (p !== undefined && (steps[p.step] as (ctx: EventContext) => boolean)(ctx)) {
        p.ids.push(ctx.event.auditID);
        p.step++;
        if (p.step < steps.length) return undefined;
        state.delete(key);
        return { auditIDs: p.ids };
      }
      // A fresh first step restarts the window: the latest start gives the later steps most time.
      if (first(ctx)) state.set(key, { step: 1, start: now, ids: [ctx.event.auditID] });
      return undefined;
    },
    get size() {
      return state.size;
    },
  };
}

/** Every step seen, in any order, within the window: the latest event of each step counts. */
function unorderedMatcher(
  s: Sequence,
  steps: readonly ((ctx: EventContext) => boolean)[],
  keyOf: KeyOf,
  maxKeys: number,
): StatefulMatcher {
  const state = new KeyedState<(Seen | undefined)[]>(maxKeys);
  return {
    offer(ctx) {
      const key = keyOf(ctx);
      if (key === undefined) return undefined;
      const hits = steps.map((step) => step(ctx));
      if (!hits.some(Boolean)) return undefined;
      const now = ctx.timeMs;
      const seen = state.get(key) ?? new Array<Seen | undefined>(steps.length).fill(undefined);
      hits.forEach((hit, i) => {
        if (hit) seen[i] = { t: now, id: ctx.event.auditID };
      });
      const live = seen.map((x) => (x !== undefined && now - x.t <= s.windowMs ? x : undefined));
      if (live.every((x) => x !== undefined)) {
        state.delete(key);
        const ordered = (live as Seen[]).slice().sort((a, b) => a.t - b.t);
        return { auditIDs: [...new Set(ordered.map((x) => x.id))] };
      }
      state.set(key, live);
      return undefined;
    },
    get size() {
      return state.size;
    },
  };
}
