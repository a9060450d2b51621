import type { AuditEvent, Level } from '../model/event.js';
import { buildCluster } from './cluster.js';
import type { SimContext } from './context.js';
import { Engine, type StepSink } from './engine.js';
import { Prng } from './prng.js';
import { scheduleAttack } from './scenarios/attack.js';
import { scheduleChanges } from './scenarios/changes.js';
import { scheduleDenials } from './scenarios/denials.js';
import type { ScenarioKit } from './scenarios/kit.js';
import { scheduleSlow } from './scenarios/slow.js';
import { formatMicroTime } from './time.js';
import { periodicRatePerS, startBackground, startPeriodic } from './traffic.js';
import {
  SCENARIOS,
  type ScenarioName,
  type StepRecord,
  TRUTH_SCHEMA,
  type Truth,
  type TruthStep,
} from './truth.js';

export interface SimulateOptions {
  /** Fixes every byte of the output. Default 1. */
  readonly seed?: number;
  /** Simulated time of the first request, epoch milliseconds. Default 2026-01-15T09:00:00Z. */
  readonly startMs?: number;
  /** Stop after this many events. */
  readonly count?: number;
  /** Stop at this much simulated time after the start. */
  readonly durationMs?: number;
  /** Target events per simulated second. Default 100. */
  readonly ratePerS?: number;
  /** Worker nodes. Default 10. */
  readonly nodes?: number;
  /** Default: all of them. `normal` is the background traffic. */
  readonly scenarios?: readonly ScenarioName[];
}

/** One event as written: the JSON line (with its newline) and what callers sort or group by. */
export interface SimulatedEvent {
  readonly line: string;
  /** stageTimestamp, epoch microseconds. */
  readonly t: number;
  readonly auditID: string;
  readonly stage: 'ResponseStarted' | 'ResponseComplete';
  readonly level: Level;
  /** True when `line` is pure ASCII (a writer may then skip UTF-8 encoding). */
  readonly ascii: boolean;
}

export const DEFAULT_START_MS = Date.UTC(2026, 0, 15, 9, 0, 0);
export const DEFAULT_RATE_PER_S = 100;
export const DEFAULT_NODES = 10;
/** Without --count or --duration (a live demo) the scenarios repeat every ten minutes. */
const OPEN_ENDED_WINDOW_US = 600_000_000;

/**
 * A deterministic stream of audit events: base control-plane traffic with the chosen scenarios
 * mixed in. Iterate it once; afterwards `truth()` describes what the scenarios wrote.
 */
export class Simulation implements Iterable<SimulatedEvent> {
  readonly seed: number;
  readonly startUs: number;
  readonly scenarios: readonly ScenarioName[];
  readonly count: number;
  readonly endUs: number;
  /** The span scenarios are spread over, µs. */
  readonly windowUs: number;
  readonly ratePerS: number;
  readonly nodes: number;
  private readonly steps: StepRecord[] = [];
  private emitted = 0;
  private lastUs = 0;
  private used = false;

  constructor(options: SimulateOptions = {}) {
    this.seed = options.seed ?? 1;
    this.startUs = Math.round((options.startMs ?? DEFAULT_START_MS) * 1000);
    this.scenarios = [...new Set(options.scenarios ?? SCENARIOS)];
    this.nodes = Math.max(1, Math.floor(options.nodes ?? DEFAULT_NODES));
    const normal = this.scenarios.includes('normal');
    // The periodic heartbeats alone may exceed a low --rate; never ask background for less than nothing.
    this.ratePerS = Math.max(
      options.ratePerS ?? DEFAULT_RATE_PER_S,
      normal ? periodicRatePerS(this.nodes) : 0.1,
    );
    this.count = options.count ?? Number.POSITIVE_INFINITY;
    this.endUs =
      options.durationMs === undefined
        ? Number.POSITIVE_INFINITY
        : this.startUs + Math.round(options.durationMs * 1000);
    const byCount = Number.isFinite(this.count)
      ? (this.count / this.ratePerS) * 1_000_000
      : Number.POSITIVE_INFINITY;
    const byDuration = this.endUs - this.startUs;
    const window = Math.min(byCount, byDuration);
    this.windowUs = Number.isFinite(window) ? Math.max(window, 1_000_000) : OPEN_ENDED_WINDOW_US;
  }

  /** Events written so far. */
  get events(): number {
    return this.emitted;
  }

  [Symbol.iterator](): Iterator<SimulatedEvent> {
    if (this.used) throw new Error('a Simulation can be iterated only once');
    this.used = true;
    const engine = this.setUp();
    const { count, endUs } = this;
    let finished = false;
    // A hand-written iterator reusing one result object: the loop runs once per event.
    const result: { done: boolean; value: SimulatedEvent } = { done: false, value: undefined as never };
    const done = { done: true as const, value: undefined };
    const next = (): IteratorResult<SimulatedEvent> => {
      if (finished || this.emitted >= count) return done;
      for (;;) {
        const nextTask = engine.nextTaskTime() ?? Number.POSITIVE_INFINITY;
        const p = engine.pending.peek();
        if (p !== undefined && p.t <= nextTask && p.t <= endUs) {
          if (p.t >= endUs) break;
          engine.pending.pop();
          const step = p.step;
          if (step !== undefined) record(step, p.t, p.auditID, p.counted);
          this.emitted++;
          this.lastUs = p.t;
          result.value = p;
          return result;
        }
        if (nextTask >= endUs) break;
        engine.runNextTask();
      }
      finished = true;
      return done;
    };
    return { next };
  }

  private setUp(): Engine {
    const root = new Prng(this.seed);
    const engine = new Engine(root.fork('engine'), this.startUs);
    const cluster = buildCluster(root.fork('cluster'), this.nodes);
    let rv = 48_211_000 + root.fork('rv').int(1_000_000);
    const ctx: SimContext = {
      engine,
      prng: engine.prng,
      cluster,
      nextRv: () => ++rv,
      currentRv: () => rv,
    };
    if (this.scenarios.includes('normal')) {
      startPeriodic(ctx, this.startUs);
      startBackground(ctx, this.startUs, this.ratePerS - periodicRatePerS(this.nodes));
    }
    const plan = (cycle: number): void => {
      const kit = this.kit(ctx, this.startUs + cycle * this.windowUs, cycle);
      if (this.scenarios.includes('denials')) scheduleDenials(kit);
      if (this.scenarios.includes('slow')) scheduleSlow(kit);
      if (this.scenarios.includes('attack')) scheduleAttack(kit);
      if (this.scenarios.includes('changes')) scheduleChanges(kit);
    };
    const repeat = !Number.isFinite(this.endUs) && !Number.isFinite(this.count);
    const planCycle = (cycle: number): void => {
      plan(cycle);
      if (repeat) engine.at(this.startUs + (cycle + 1) * this.windowUs, () => planCycle(cycle + 1));
    };
    planCycle(0);
    return engine;
  }

  private kit(c: SimContext, startUs: number, cycle: number): ScenarioKit {
    const steps = this.steps;
    return {
      c,
      startUs,
      windowUs: this.windowUs,
      step(scenario, id, title, expect) {
        const s: StepRecord = {
          id: cycle === 0 ? id : `${id}#${cycle + 1}`,
          scenario,
          title,
          expect,
          auditIDs: [],
        };
        steps.push(s);
        return s;
      },
      at(atUs, step, fn) {
        c.engine.at(atUs, (now) => {
          const before = c.engine.currentStep;
          c.engine.currentStep = step;
          try {
            fn(now);
          } finally {
            c.engine.currentStep = before;
          }
        });
      },
    };
  }

  /** The ground truth for what has been written so far. */
  truth(): Truth {
    const steps: TruthStep[] = this.steps.map((s) => ({
      id: s.id,
      scenario: s.scenario,
      title: s.title,
      ...(s.firstUs === undefined ? {} : { first: formatMicroTime(s.firstUs) }),
      ...(s.lastUs === undefined ? {} : { last: formatMicroTime(s.lastUs) }),
      auditIDs: [...s.auditIDs],
      expect: s.expect,
    }));
    return {
      schema: TRUTH_SCHEMA,
      seed: this.seed,
      scenarios: [...this.scenarios],
      start: formatMicroTime(this.startUs),
      end: formatMicroTime(Math.max(this.lastUs, this.startUs)),
      events: this.emitted,
      steps,
    };
  }
}

function record(step: StepSink, t: number, auditID: string, counted: { done: boolean } | undefined): void {
  if (counted !== undefined) {
    if (counted.done) {
      step.lastUs = t;
      return;
    }
    counted.done = true;
  }
  step.auditIDs.push(auditID);
  if (step.firstUs === undefined) step.firstUs = t;
  step.lastUs = t;
}

/** The JSON lines (each ending in a newline) of a simulation; the fast path for benchmarks. */
export function* generateLines(options: SimulateOptions = {}): Generator<string> {
  for (const e of new Simulation(options)) yield e.line;
}

/** The events of a simulation as objects (parsed from the lines, so both views agree). */
export function* generateEvents(options: SimulateOptions = {}): Generator<AuditEvent> {
  for (const e of new Simulation(options)) yield JSON.parse(e.line) as AuditEvent;
}
