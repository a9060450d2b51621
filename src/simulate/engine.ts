import type { Level } from '../model/event.js';
import { WRITE_VERBS } from '../policy/known-api.js';
import type { Actor } from './cluster.js';
import { SplitTimeHeap, TimeHeap } from './heap.js';
import type { Prng } from './prng.js';
import { formatGoDuration, formatMicroTime } from './time.js';

/** What an event's objectRef names. Field order follows audit/v1 ObjectReference. */
export interface Ref {
  readonly resource: string;
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
  readonly apiGroup?: string | undefined;
  readonly apiVersion: string;
  readonly subresource?: string | undefined;
}

export interface Failure {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** One API request; the engine turns it into one or two audit events. */
export interface Request {
  readonly actor: Actor;
  readonly verb: string;
  readonly uri: string;
  readonly ref?: Ref;
  /** Defaults to 200, or 201 for create. */
  readonly code?: number;
  readonly failure?: Failure;
  /** Verbatim responseStatus JSON, for statuses that are not a plain Failure (401 has no reason). */
  readonly statusJson?: string;
  readonly latencyUs: number;
  /** Defaults to the audit policy in `levelFor`. */
  readonly level?: Level;
  /** JSON text of the request body, logged at RequestResponse. */
  readonly requestObject?: string;
  /** JSON text of the response body, logged at RequestResponse. */
  readonly responseObject?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** Authorization outcome; `null` for requests that never reach authorization (401). */
  readonly authz?: { readonly decision: 'allow' | 'forbid'; readonly reason: string } | null;
  /** Long-running (watch, exec, logs -f): a ResponseStarted event, then ResponseComplete at the end. */
  readonly longRunning?: boolean;
  /** Only a ResponseStarted event, as kube-apiserver writes for failed authentication. */
  readonly startedOnly?: boolean;
  /** Override the user block (401s have an empty user). */
  readonly userJson?: string;
}

/** The truth-file step an event belongs to; the engine appends each written auditID to it. */
export interface StepSink {
  readonly auditIDs: string[];
  firstUs?: number;
  lastUs?: number;
}

/** One rendered event waiting for its stageTimestamp to come round. */
export interface PendingEvent {
  t: number;
  seq: number;
  line: string;
  auditID: string;
  stage: 'ResponseStarted' | 'ResponseComplete';
  level: Level;
  /** The line is pure ASCII, so writers may copy it as Latin-1 instead of encoding UTF-8. */
  ascii: boolean;
  step: StepSink | undefined;
  /** Shared by both stages of one request so the step lists the auditID once. */
  counted: { done: boolean } | undefined;
}

interface Task {
  t: number;
  seq: number;
  run: (nowUs: number) => void;
}

const RR_RESOURCES = new Set([
  'pods',
  'deployments',
  'configmaps',
  'secrets',
  'roles',
  'rolebindings',
  'clusterroles',
  'clusterrolebindings',
  'serviceaccounts',
]);
/** Creates that never reach etcd: reviews are answered by the authenticator or authorizer. */
const NO_STORAGE = new Set([
  'tokenreviews',
  'subjectaccessreviews',
  'selfsubjectaccessreviews',
  'selfsubjectrulesreviews',
  'selfsubjectreviews',
  'localsubjectaccessreviews',
]);
const WRITE_VERB_SET: ReadonlySet<string> = new Set(WRITE_VERBS);

/**
 * The audit policy the simulated API server runs: RequestResponse for writes to workloads,
 * configuration, secrets and RBAC; Metadata for everything else (reads, leases, nodes, events).
 */
export function levelFor(verb: string, ref: Ref | undefined): Level {
  if (ref === undefined || !WRITE_VERB_SET.has(verb)) return 'Metadata';
  if (ref.subresource !== undefined && ref.subresource !== 'status') return 'Metadata';
  return RR_RESOURCES.has(ref.resource) ? 'RequestResponse' : 'Metadata';
}

/** JSON string literal; the paths the simulator builds never hold control characters. */
function quote(s: string): string {
  return s.indexOf('"') === -1 && s.indexOf('\\') === -1 ? `"${s}"` : JSON.stringify(s);
}

function refJson(r: Ref): string {
  let s = `{"resource":"${r.resource}"`;
  if (r.namespace !== undefined) s += `,"namespace":"${r.namespace}"`;
  if (r.name !== undefined) s += `,"name":"${r.name}"`;
  if (r.apiGroup !== undefined) s += `,"apiGroup":"${r.apiGroup}"`;
  s += `,"apiVersion":"${r.apiVersion}"`;
  if (r.subresource !== undefined) s += `,"subresource":"${r.subresource}"`;
  return `${s}}`;
}

const OK_STATUS: Record<number, string> = {
  200: '{"metadata":{},"code":200}',
  201: '{"metadata":{},"code":201}',
  101: '{"metadata":{},"code":101}',
};

function failureJson(f: Failure): string {
  let s = `{"metadata":{},"status":"Failure","message":${JSON.stringify(f.message)},"reason":"${f.reason}"`;
  if (f.details !== undefined) s += `,"details":${JSON.stringify(f.details)}`;
  return `${s},"code":${f.code}}`;
}

/** Indexes into the parts array `emit` joins into a line. */
const STAGE = 5;
const RESPONSE_KEY = 17;
const RESPONSE = 18;
const STAGE_TIME = 22;

/** Requests slower than this get `apiserver.latency.k8s.io/*` annotations, as kube-apiserver does. */
export const SLOW_REQUEST_US = 500_000;

/**
 * The discrete-event core: tasks run in time order and emit requests; the rendered events wait
 * in a heap until their stageTimestamp is due, so the output is ordered as kube-apiserver writes it.
 */
export class Engine {
  readonly prng: Prng;
  private readonly tasks = new TimeHeap<Task>();
  readonly pending = new SplitTimeHeap<PendingEvent>(2_000_000);
  private seq = 0;
  nowUs: number;
  /** The step new requests are attributed to while a scenario task runs. */
  currentStep: StepSink | undefined;
  /** While set, every write waits seconds on etcd; those requests belong to `step`. */
  etcdSlow: { fromUs: number; toUs: number; step: StepSink } | undefined;

  constructor(prng: Prng, startUs: number) {
    this.prng = prng;
    this.nowUs = startUs;
  }

  at(tUs: number, run: (nowUs: number) => void): void {
    this.tasks.push({ t: Math.round(tUs), seq: this.seq++, run });
  }

  /** Runs `run` every `periodUs` from `firstUs` with ±`jitter` (a fraction of the period). */
  every(firstUs: number, periodUs: number, jitter: number, run: (nowUs: number) => void): void {
    const tick = (now: number): void => {
      run(now);
      const j = jitter === 0 ? 0 : (this.prng.float() * 2 - 1) * jitter * periodUs;
      this.at(now + periodUs + j, tick);
    };
    this.at(firstUs, tick);
  }

  nextTaskTime(): number | undefined {
    return this.tasks.peek()?.t;
  }

  runNextTask(): void {
    const task = this.tasks.pop();
    if (task === undefined) return;
    this.nowUs = task.t;
    task.run(task.t);
  }

  /** Renders `req` starting now (plus `offsetUs`) and queues its events; returns its auditID. */
  emit(req: Request, offsetUs = 0): string {
    const prng = this.prng;
    const auditID = prng.uuid();
    const start = this.nowUs + Math.round(offsetUs);
    const ref = req.ref;
    let latency = Math.max(1, Math.round(req.latencyUs));
    let step = this.currentStep;
    let etcdNs = 0;
    const slow = this.etcdSlow;
    if (
      slow !== undefined &&
      start >= slow.fromUs &&
      start < slow.toUs &&
      WRITE_VERB_SET.has(req.verb) &&
      !req.longRunning &&
      !NO_STORAGE.has(ref?.resource ?? '')
    ) {
      const extraUs = Math.round(prng.logNormal(2_500_000, 0.45));
      latency += extraUs;
      etcdNs = extraUs * 1000 + prng.int(1_000_000);
      step ??= slow.step;
    }
    const end = start + latency;
    const level = req.level ?? levelFor(req.verb, ref);
    const code = req.failure?.code ?? req.code ?? (req.verb === 'create' ? 201 : 200);

    const status =
      req.statusJson !== undefined
        ? req.statusJson
        : req.failure !== undefined
          ? failureJson(req.failure)
          : (OK_STATUS[code] ?? `{"metadata":{},"code":${code}}`);
    let ann: string;
    // Everything the simulator renders is ASCII except Go's "µs" in latency annotations.
    let ascii = true;
    if (
      req.authz === undefined &&
      req.annotations === undefined &&
      (latency < SLOW_REQUEST_US || req.longRunning)
    ) {
      ann = req.actor.allowAnnotationsJson;
    } else {
      ann = this.annotationsJson(req, latency, etcdNs);
      ascii = !ann.includes('µ');
    }
    const rr = level === 'RequestResponse' || level === 'Request';
    const counted = step === undefined ? undefined : { done: false };

    // One array joined once: a flat string without the cons-string tree template literals build.
    const parts: string[] = [
      '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"',
      level,
      '","auditID":"',
      auditID,
      '","stage":"',
      'ResponseComplete',
      '","requestURI":',
      quote(req.uri),
      ',"verb":"',
      req.verb,
      '",',
      req.userJson ?? req.actor.json,
      ref === undefined ? '' : `,"objectRef":${refJson(ref)}`,
      ',"responseStatus":',
      status,
      rr && req.requestObject !== undefined ? ',"requestObject":' : '',
      rr && req.requestObject !== undefined ? req.requestObject : '',
      '',
      '',
      ',"requestReceivedTimestamp":"',
      formatMicroTime(start),
      '","stageTimestamp":"',
      '',
      '"',
      ann,
      '}\n',
    ];
    const queue = (t: number, stage: PendingEvent['stage']): void => {
      parts[STAGE] = stage;
      parts[STAGE_TIME] = formatMicroTime(t);
      this.pending.push(
        { t, seq: this.seq++, line: parts.join(''), auditID, stage, level, ascii, step, counted },
        this.nowUs,
      );
    };
    if (req.longRunning || req.startedOnly) {
      const startedAt = start + Math.min(latency, 200 + prng.int(3000));
      queue(startedAt, 'ResponseStarted');
      if (req.startedOnly) return auditID;
    }
    if (level === 'RequestResponse' && req.responseObject !== undefined) {
      parts[RESPONSE_KEY] = ',"responseObject":';
      parts[RESPONSE] = req.responseObject;
    }
    queue(end, 'ResponseComplete');
    return auditID;
  }

  private annotationsJson(req: Request, latency: number, etcdNs: number): string {
    const prng = this.prng;
    const annotations: [string, string][] = [];
    if (req.authz !== null) {
      const authz = req.authz ?? { decision: 'allow', reason: req.actor.allowReason };
      annotations.push(['authorization.k8s.io/decision', authz.decision]);
      annotations.push(['authorization.k8s.io/reason', authz.reason]);
    }
    if (req.annotations !== undefined) {
      for (const k in req.annotations) {
        const v = req.annotations[k];
        if (v !== undefined) annotations.push([k, v]);
      }
    }
    if (latency >= SLOW_REQUEST_US && !req.longRunning) {
      const has = (k: string): boolean => annotations.some(([key]) => key === k);
      const totalNs = latency * 1000 + prng.int(1000);
      if (etcdNs > 0) {
        annotations.push(['apiserver.latency.k8s.io/etcd', formatGoDuration(etcdNs)]);
      } else if (!has('apiserver.latency.k8s.io/etcd') && req.verb !== 'get' && req.verb !== 'watch') {
        annotations.push([
          'apiserver.latency.k8s.io/etcd',
          formatGoDuration(totalNs * (0.7 + 0.25 * prng.float())),
        ]);
      }
      annotations.push(['apiserver.latency.k8s.io/total', formatGoDuration(totalNs)]);
      annotations.push([
        'apiserver.latency.k8s.io/serialize-response-object',
        formatGoDuration(20_000 + prng.int(3_000_000)),
      ]);
      annotations.push(['apiserver.latency.k8s.io/response-write', formatGoDuration(500 + prng.int(40_000))]);
    }
    // encoding/json writes map keys sorted.
    annotations.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let ann = '';
    if (annotations.length > 0) {
      ann = ',"annotations":{';
      for (let i = 0; i < annotations.length; i++) {
        const a = annotations[i];
        if (a === undefined) continue;
        ann += `${i === 0 ? '' : ','}"${a[0]}":${JSON.stringify(a[1])}`;
      }
      ann += '}';
    }
    return ann;
  }
}
