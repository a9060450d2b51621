import { Hono } from 'hono';
import { UserError } from '../model/errors.js';
import { lintPolicyText } from '../policy/lint-file.js';
import { loadPolicyOrThrow } from '../policy/load.js';
import { simulatePolicy } from '../policy/simulate.js';
import type { Store } from '../store/contract.js';
import { filterFromParams } from '../store/filter-params.js';
import { storedEvents } from '../store/stored-events.js';

/**
 * Policy tooling on a posted policy (the body is the policy's YAML): `POST /lint` gives the findings
 * of `kaudit policy lint`; `POST /simulate?since=...` replays the stored events through it as
 * `kaudit policy simulate --data` does.
 */
export function policyApi(store: Store): Hono {
  const api = new Hono();
  api.post('/lint', async (c) => {
    const text = await c.req.text();
    const results = lintPolicyText(text, { file: 'policy.yaml' });
    const findings = results.flatMap((r) => r.diagnostics);
    return Response.json({ errors: findings.filter((d) => d.severity === 'error').length, findings });
  });
  api.post('/simulate', async (c) => {
    const text = await c.req.text();
    if (text.trim() === '')
      throw new UserError('KAUDIT_API_BAD_PARAMETER', 'the body must be an audit Policy (YAML)');
    const policy = loadPolicyOrThrow(text, { file: 'policy.yaml' });
    const filter = filterFromParams(new URL(c.req.url).searchParams);
    const report = await simulatePolicy(policy, storedEvents(store, filter));
    return Response.json(report);
  });
  return api;
}
