/**
 * Redaction before anything is stored. Users set RequestResponse on secrets by mistake; kaudit
 * keeps the keys (what changed) and drops the values (the secret).
 */
import type { AuditEvent } from './event.js';
import { isRecord } from './json.js';

export const REDACTED = '<redacted>';
export const REDACTED_ANNOTATION = 'kaudit.io/redacted';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Query parameters whose values are credentials (OIDC/OAuth flows, websocket token auth, signed URLs). */
const SECRET_QUERY_PARAMS =
  /^(?:token|access_token|id_token|refresh_token|client_secret|password|passwd|secret|api_key|apikey|sig|signature|x-amz-signature|x-goog-signature|code)$/i;

type Json = Record<string, unknown>;

function blankValues(map: unknown): boolean {
  if (!isRecord(map)) return false;
  let changed = false;
  for (const k of Object.keys(map)) {
    if (map[k] !== REDACTED) {
      map[k] = REDACTED;
      changed = true;
    }
  }
  return changed;
}

/** A Secret-shaped object (full object, merge patch or apply body): data/stringData and last-applied. */
function redactSecretObject(obj: Json, inList = false): boolean {
  let changed = blankValues(obj.data);
  changed = blankValues(obj.stringData) || changed;
  const meta = obj.metadata;
  if (isRecord(meta) && isRecord(meta.annotations) && typeof meta.annotations[LAST_APPLIED] === 'string') {
    meta.annotations[LAST_APPLIED] = REDACTED;
    changed = true;
  }
  // A SecretList's items are Secrets; lists do not nest in lists, so neither does this walk.
  if (Array.isArray(obj.items) && !inList) {
    for (const item of obj.items) if (isRecord(item)) changed = redactSecretObject(item, true) || changed;
  }
  return changed;
}

/** JSON Patch (RFC 6902) bodies: values written under /data, /stringData or the last-applied annotation. */
function redactJsonPatch(ops: unknown[]): boolean {
  let changed = false;
  for (const op of ops) {
    if (!isRecord(op) || typeof op.path !== 'string' || !('value' in op)) continue;
    if (/^\/(?:data|stringData)(?:\/|$)|last-applied-configuration/.test(op.path)) {
      op.value = isRecord(op.value)
        ? Object.fromEntries(Object.keys(op.value).map((k) => [k, REDACTED]))
        : REDACTED;
      changed = true;
    }
  }
  return changed;
}

function redactBody(body: unknown, kind: 'secret' | 'tokenreview' | 'tokenrequest'): boolean {
  if (Array.isArray(body)) return kind === 'secret' ? redactJsonPatch(body) : false;
  if (!isRecord(body)) return false;
  if (kind === 'secret') return redactSecretObject(body);
  let changed = false;
  for (const part of ['spec', 'status'] as const) {
    const sub = body[part];
    if (isRecord(sub) && typeof sub.token === 'string' && sub.token !== '') {
      sub.token = REDACTED;
      changed = true;
    }
  }
  return changed;
}

function bodyKind(event: AuditEvent, body: unknown): 'secret' | 'tokenreview' | 'tokenrequest' | null {
  const ref = event.objectRef;
  const objKind = isRecord(body) && typeof body.kind === 'string' ? body.kind : '';
  if (ref?.resource === 'secrets' || objKind === 'Secret' || objKind === 'SecretList') return 'secret';
  if (ref?.resource === 'tokenreviews' || objKind === 'TokenReview') return 'tokenreview';
  if ((ref?.resource === 'serviceaccounts' && ref.subresource === 'token') || objKind === 'TokenRequest') {
    return 'tokenrequest';
  }
  return null;
}

/** Replaces credential-looking query parameter values in a request URI, keeping the names. */
export function redactRequestUri(uri: string): string {
  const q = uri.indexOf('?');
  if (q < 0) return uri;
  const parts = uri.slice(q + 1).split('&');
  let changed = false;
  const out = parts.map((p) => {
    const eq = p.indexOf('=');
    if (eq < 0) return p;
    let name = p.slice(0, eq);
    try {
      name = decodeURIComponent(name);
    } catch {
      // keep the raw name
    }
    if (!SECRET_QUERY_PARAMS.test(name)) return p;
    changed = true;
    return `${p.slice(0, eq)}=${encodeURIComponent(REDACTED)}`;
  });
  return changed ? `${uri.slice(0, q + 1)}${out.join('&')}` : uri;
}

/** Redacts in place; returns true when anything was replaced (and marks the event). */
export function redactEvent(event: AuditEvent): boolean {
  let changed = false;
  for (const field of ['requestObject', 'responseObject'] as const) {
    const body = event[field];
    if (body === undefined) continue;
    const kind = bodyKind(event, body);
    if (kind !== null) changed = redactBody(body, kind) || changed;
  }
  if (typeof event.requestURI === 'string') {
    const uri = redactRequestUri(event.requestURI);
    if (uri !== event.requestURI) {
      event.requestURI = uri;
      changed = true;
    }
  }
  if (changed) event.annotations = { ...(event.annotations ?? {}), [REDACTED_ANNOTATION]: 'true' };
  return changed;
}
