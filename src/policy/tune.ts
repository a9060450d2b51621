import type { AuditEvent } from '../model/event.js';
import { DECISION_ANNOTATION } from '../model/event.js';
import { evaluatePolicy } from './evaluate.js';
import { presetToPolicy } from './generate.js';
import { type PolicyFeatures, policyFeatures } from './kube-version.js';
import type { Preset, PresetRule } from './presets/preset.js';
import { attributesFromEvent } from './request-attributes.js';
import type { CapturedEvent } from './simulate.js';
import { estimateBytes } from './simulate.js';

const READ_VERBS = new Set(['get', 'list', 'watch']);

export interface NoisySource {
  user: string;
  verbs: string[];
  group: string;
  resource: string;
  events: number;
  bytes: number;
  /** Share of the bytes the base policy would keep. */
  share: number;
}

export interface TuneOptions {
  features?: PolicyFeatures;
  /** At most this many drop rules are added. */
  maxRules?: number;
  /** A source must weigh at least this share of the kept log to be dropped. */
  minShare?: number;
}

function denied(e: AuditEvent): boolean {
  const code = e.responseStatus?.code;
  return code === 401 || code === 403 || e.annotations?.[DECISION_ANNOTATION] === 'forbid';
}

/**
 * Tunes `base` to observed traffic: drops the heaviest read-only requests of system identities
 * (`system:` users) by the bytes they would add to the log. Writes are never dropped (only get, list and
 * watch are); a (user, verb, resource) that was ever denied in the capture is never dropped either.
 * A policy cannot see the response, so a later denial of a dropped (user, verb, resource) goes unlogged.
 */
export async function tunePreset(
  base: Preset,
  events: AsyncIterable<CapturedEvent> | Iterable<CapturedEvent>,
  opts: TuneOptions = {},
): Promise<{ preset: Preset; noisy: NoisySource[]; keptBytes: number }> {
  const f = opts.features ?? policyFeatures();
  const policy = presetToPolicy(base);
  const sources = new Map<
    string,
    { user: string; group: string; resource: string; verbs: Set<string>; events: number; bytes: number }
  >();
  const deniedKeys = new Set<string>();
  let keptBytes = 0;
  for await (const { event: e, bytes } of events) {
    const d = evaluatePolicy(policy, attributesFromEvent(e), f);
    if (d.level === 'None' || d.omitStages.includes(e.stage)) continue;
    const size = estimateBytes(e, bytes, d.level, d.omitManagedFields);
    keptBytes += size;
    const user = e.user?.username ?? '';
    const ref = e.objectRef;
    if (!ref?.resource || !READ_VERBS.has(e.verb) || !user.startsWith('system:')) continue;
    const resource = ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource;
    const group = ref.apiGroup ?? '';
    const key = `${user}\u0000${group}\u0000${resource}`;
    if (denied(e)) deniedKeys.add(`${key}\u0000${e.verb}`);
    const s = sources.get(key) ?? { user, group, resource, verbs: new Set<string>(), events: 0, bytes: 0 };
    s.verbs.add(e.verb);
    s.events++;
    s.bytes += size;
    sources.set(key, s);
  }
  const minShare = opts.minShare ?? 0.01;
  const noisy: NoisySource[] = [...sources.entries()]
    .map(([key, s]) => ({
      user: s.user,
      group: s.group,
      resource: s.resource,
      verbs: [...s.verbs].filter((v) => !deniedKeys.has(`${key}\u0000${v}`)).sort(),
      events: s.events,
      bytes: s.bytes,
      share: keptBytes > 0 ? s.bytes / keptBytes : 0,
    }))
    .filter((s) => s.verbs.length > 0 && s.share >= minShare)
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, opts.maxRules ?? 10);
  const drops: PresetRule[] = noisy.map((s) => ({
    comment: `Tuned: ${s.user} ${s.verbs.join('/')} ${s.group ? `${s.group}/` : ''}${s.resource} made ${s.events} events, ${(s.share * 100).toFixed(1)}% of the log's bytes, never denied.`,
    rule: {
      level: 'None',
      users: [s.user],
      verbs: s.verbs,
      resources: [{ group: s.group, resources: [s.resource] }],
    },
  }));
  const preset: Preset = {
    ...base,
    description: `${base.description}\nTuned to observed traffic: the ${drops.length} heaviest read-only system request sources are dropped first.`,
    rules: [...drops, ...base.rules],
  };
  return { preset, noisy, keptBytes };
}
