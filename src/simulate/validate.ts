import { LEVELS, STAGES } from '../model/event.js';
import { isRecord } from '../model/json.js';

const TOP_LEVEL = new Set([
  'kind',
  'apiVersion',
  'level',
  'auditID',
  'stage',
  'requestURI',
  'verb',
  'user',
  'impersonatedUser',
  'sourceIPs',
  'userAgent',
  'objectRef',
  'responseStatus',
  'requestObject',
  'responseObject',
  'requestReceivedTimestamp',
  'stageTimestamp',
  'annotations',
]);
const OBJECT_REF = new Set([
  'resource',
  'namespace',
  'name',
  'uid',
  'apiGroup',
  'apiVersion',
  'resourceVersion',
  'subresource',
]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const IP = /^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-fA-F:]+$/;

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function checkUser(v: unknown, field: string, problems: string[]): void {
  if (!isRecord(v)) {
    problems.push(`${field} must be an object`);
    return;
  }
  for (const k of Object.keys(v)) {
    if (!['username', 'uid', 'groups', 'extra'].includes(k))
      problems.push(`${field}.${k} is not a UserInfo field`);
  }
  if (v.username !== undefined && typeof v.username !== 'string')
    problems.push(`${field}.username must be a string`);
  if (v.uid !== undefined && typeof v.uid !== 'string') problems.push(`${field}.uid must be a string`);
  if (v.groups !== undefined && !isStringArray(v.groups))
    problems.push(`${field}.groups must be a list of strings`);
  if (v.extra !== undefined) {
    if (!isRecord(v.extra) || !Object.values(v.extra).every(isStringArray)) {
      problems.push(`${field}.extra must map strings to lists of strings`);
    }
  }
}

/**
 * Checks that `value` is an audit.k8s.io/v1 Event as kube-apiserver serialises it: required
 * fields present with the right types, enums in range, MicroTime timestamps in order, bodies only
 * at levels that carry them. Returns every problem found; an empty list means valid.
 */
export function validateAuditEvent(value: unknown): string[] {
  const problems: string[] = [];
  if (!isRecord(value)) return ['event must be a JSON object'];
  const e = value;
  for (const k of Object.keys(e)) if (!TOP_LEVEL.has(k)) problems.push(`${k} is not an audit/v1 Event field`);
  if (e.kind !== 'Event') problems.push(`kind must be "Event", got ${JSON.stringify(e.kind)}`);
  if (e.apiVersion !== 'audit.k8s.io/v1')
    problems.push(`apiVersion must be "audit.k8s.io/v1", got ${JSON.stringify(e.apiVersion)}`);
  if (!(LEVELS as readonly unknown[]).includes(e.level) || e.level === 'None') {
    problems.push(`level must be Metadata, Request or RequestResponse, got ${JSON.stringify(e.level)}`);
  }
  if (typeof e.auditID !== 'string' || !UUID.test(e.auditID)) problems.push('auditID must be a UUID');
  if (!(STAGES as readonly unknown[]).includes(e.stage))
    problems.push(`stage ${JSON.stringify(e.stage)} is not a stage`);
  if (typeof e.requestURI !== 'string' || !e.requestURI.startsWith('/'))
    problems.push('requestURI must be a path');
  if (typeof e.verb !== 'string' || e.verb === '') problems.push('verb must be a non-empty string');
  checkUser(e.user, 'user', problems);
  if (e.impersonatedUser !== undefined) checkUser(e.impersonatedUser, 'impersonatedUser', problems);
  if (e.sourceIPs !== undefined && (!isStringArray(e.sourceIPs) || !e.sourceIPs.every((ip) => IP.test(ip)))) {
    problems.push('sourceIPs must be a list of IP addresses');
  }
  if (e.userAgent !== undefined && typeof e.userAgent !== 'string')
    problems.push('userAgent must be a string');
  if (e.objectRef !== undefined) {
    if (!isRecord(e.objectRef)) problems.push('objectRef must be an object');
    else {
      for (const [k, v] of Object.entries(e.objectRef)) {
        if (!OBJECT_REF.has(k)) problems.push(`objectRef.${k} is not an ObjectReference field`);
        else if (typeof v !== 'string') problems.push(`objectRef.${k} must be a string`);
      }
    }
  }
  if (e.responseStatus !== undefined) {
    const s = e.responseStatus;
    if (!isRecord(s)) problems.push('responseStatus must be an object');
    else {
      if (
        s.code !== undefined &&
        (typeof s.code !== 'number' || !Number.isInteger(s.code) || s.code < 100 || s.code > 599)
      ) {
        problems.push('responseStatus.code must be an HTTP status code');
      }
      for (const k of ['status', 'message', 'reason'] as const) {
        if (s[k] !== undefined && typeof s[k] !== 'string')
          problems.push(`responseStatus.${k} must be a string`);
      }
    }
  }
  if (e.requestObject !== undefined && e.level === 'Metadata')
    problems.push('requestObject is not logged at Metadata level');
  if (e.responseObject !== undefined && e.level !== 'RequestResponse') {
    problems.push('responseObject is only logged at RequestResponse level');
  }
  for (const k of ['requestReceivedTimestamp', 'stageTimestamp'] as const) {
    if (typeof e[k] !== 'string' || !MICRO_TIME.test(e[k]) || Number.isNaN(Date.parse(e[k]))) {
      problems.push(`${k} must be an RFC 3339 time with microseconds`);
    }
  }
  if (
    typeof e.requestReceivedTimestamp === 'string' &&
    typeof e.stageTimestamp === 'string' &&
    e.stageTimestamp < e.requestReceivedTimestamp
  ) {
    problems.push('stageTimestamp is before requestReceivedTimestamp');
  }
  if (e.annotations !== undefined) {
    if (!isRecord(e.annotations) || !Object.values(e.annotations).every((v) => typeof v === 'string')) {
      problems.push('annotations must map strings to strings');
    }
  }
  return problems;
}
