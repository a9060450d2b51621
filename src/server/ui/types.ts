/** The JSON shapes the dashboard reads (the API returns the analyses' typed results as they are). */

export interface StoreInfo {
  backend: string;
  location: string;
  rows: number;
  oldest: string | null;
  newest: string | null;
  clusters: { cluster: string; rows: number; oldest: string | null; newest: string | null }[];
}

export interface Range {
  since: string;
  until: string;
  bucketMs: number;
}

export interface Ranked {
  value: string | null;
  count: number;
}

export interface ActivityReport {
  range: Range;
  requests: number;
  top: {
    subjects: Ranked[];
    userAgents: Ranked[];
    sourceIps: Ranked[];
    verbs: Ranked[];
    resources: (Ranked & { subresource: string | null })[];
  };
  rateByVerb: { bucket: string; verb: string; count: number }[];
  rateByClass: { bucket: string; codeClass: number | null; count: number }[];
  newSubjects: { value: string; firstSeen: string; count: number }[];
  newUserAgents: { value: string; firstSeen: string; count: number }[];
}

export interface LatencyStats {
  count: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  totalMs: number | null;
}

export interface LatencyReport {
  range: Range;
  overall: LatencyStats;
  byVerbResource: (LatencyStats & { verb: string; resource: string | null; subresource: string | null })[];
  bySubject: (LatencyStats & { subject: string | null })[];
  heaviestClients: (LatencyStats & { subject: string | null; userAgent: string | null })[];
  slowest: {
    ts: string;
    auditId: string;
    subject: string | null;
    verb: string;
    resource: string | null;
    namespace: string | null;
    name: string | null;
    code: number | null;
    latencyMs: number;
    breakdown: Record<string, number> | null;
  }[];
  p99Series: { bucket: string; count: number; p99Ms: number | null }[];
  expensiveLists: {
    subject: string | null;
    userAgent: string | null;
    resource: string | null;
    count: number;
    p99Ms: number | null;
  }[];
  throttled: { subject: string | null; userAgent: string | null; count: number }[];
  serverErrors: { resource: string | null; verb: string; code: number | null; count: number }[];
}

export interface EventRow {
  ts: string;
  audit_id: string;
  stage: string;
  subject: string | null;
  verb: string;
  resource: string | null;
  subresource: string | null;
  namespace: string | null;
  name: string | null;
  code: number | null;
  decision: string | null;
  latency_ms: number | null;
  source_ip: string | null;
  user_agent: string | null;
  [column: string]: unknown;
}

export interface AgentStatus {
  logs?: {
    name: string;
    type: string;
    status: string;
    events: number;
    lagSeconds?: number;
    error?: string;
  }[];
}

export interface HistoryReport {
  target: { resource: string; namespace?: string; name?: string };
  changes: {
    ts: string;
    auditId: string;
    verb: string;
    subresource: string | null;
    subject: string | null;
    username: string | null;
    sourceIp: string | null;
    userAgent: string | null;
    code: number | null;
    requestObject?: unknown;
  }[];
  truncated: boolean;
}
