import type { AuditEvent, Level } from '../model/event.js';
import { LEVELS } from '../model/event.js';
import { evaluatePolicy } from '../policy/evaluate.js';
import { attributesFromEvent } from '../policy/request-attributes.js';
import type { Policy } from '../policy/types.js';

/**
 * An event as a sink would send it under `policy`, with kube-apiserver's semantics (the same
 * evaluator as `kaudit policy`): None drops it, Metadata removes both bodies, Request removes the
 * response body, and an omitted stage drops the event. A stored event never gains what it did not
 * have: the lower of its own level and the policy's wins.
 */
export function applyPolicy(event: AuditEvent, policy: Policy): AuditEvent | undefined {
  const decision = evaluatePolicy(policy, attributesFromEvent(event));
  if (decision.level === 'None' || decision.omitStages.includes(event.stage)) return undefined;
  const level = lower(decision.level, event.level);
  if (level === event.level) return event;
  const out: AuditEvent = { ...event, level };
  if (LEVELS.indexOf(level) < LEVELS.indexOf('Request')) delete out.requestObject;
  if (level !== 'RequestResponse') delete out.responseObject;
  return out;
}

function lower(a: Level, b: Level | undefined): Level {
  if (b === undefined) return a;
  return LEVELS.indexOf(a) <= LEVELS.indexOf(b) ? a : b;
}
