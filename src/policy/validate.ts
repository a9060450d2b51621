import type { Diagnostic } from '../model/errors.js';
import { LEVELS, STAGES } from '../model/event.js';
import { type PolicyFeatures, policyFeatures } from './kube-version.js';
import type { Policy } from './types.js';

// Lower-case RFC 1123 subdomain, as apimachinery's NameIsDNSSubdomain checks API group names.
const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);

function error(code: string, path: string, message: string, hint?: string): Diagnostic {
  return hint === undefined
    ? { severity: 'error', code, path, message }
    : { severity: 'error', code, path, message, hint };
}

function validateStages(stages: readonly string[] | undefined, path: string, out: Diagnostic[]): void {
  (stages ?? []).forEach((s, i) => {
    if (!(STAGES as readonly string[]).includes(s)) {
      out.push(
        error(
          'KAUDIT_POLICY_STAGE',
          `${path}[${i}]`,
          `unknown stage ${JSON.stringify(s)}`,
          `allowed stages are ${STAGES.join(', ')}`,
        ),
      );
    }
  });
}

/**
 * Every check of kube-apiserver's ValidatePolicy (pkg/apis/audit/validation), all problems at once.
 * A policy with zero rules passes here, as upstream; the loader rejects it.
 */
export function validatePolicy(policy: Policy, features: PolicyFeatures = policyFeatures()): Diagnostic[] {
  const out: Diagnostic[] = [];
  validateStages(policy.omitStages, 'omitStages', out);
  policy.rules.forEach((rule, i) => {
    const at = `rules[${i}]`;
    if (rule.level === '') {
      out.push(
        error(
          'KAUDIT_POLICY_LEVEL_REQUIRED',
          `${at}.level`,
          'level is required',
          `one of ${LEVELS.join(', ')}`,
        ),
      );
    } else if (!(LEVELS as readonly string[]).includes(rule.level)) {
      out.push(
        error(
          'KAUDIT_POLICY_LEVEL',
          `${at}.level`,
          `unsupported level ${JSON.stringify(rule.level)}`,
          `one of ${LEVELS.join(', ')} (case matters)`,
        ),
      );
    }
    (rule.nonResourceURLs ?? []).forEach((url, j) => {
      if (url === '*') return;
      if (!url.startsWith('/')) {
        out.push(
          error(
            'KAUDIT_POLICY_NONRESOURCE_URL',
            `${at}.nonResourceURLs[${j}]`,
            `${JSON.stringify(url)}: non-resource URLs must begin with "/"`,
          ),
        );
      }
      if (url.slice(0, -1).includes('*')) {
        out.push(
          error(
            'KAUDIT_POLICY_NONRESOURCE_URL',
            `${at}.nonResourceURLs[${j}]`,
            `${JSON.stringify(url)}: a "*" wildcard may only be the last character`,
            'use a prefix such as "/logs*"',
          ),
        );
      }
    });
    (rule.resources ?? []).forEach((gr, j) => {
      const group = gr.group ?? '';
      const groupAllowed = group === '' || (group === '*' && features.groupWildcard);
      if (!groupAllowed && (group.length > 253 || !DNS1123_SUBDOMAIN.test(group))) {
        const hint =
          group === '*'
            ? 'group "*" needs Kubernetes 1.36 or newer; list the groups instead'
            : group.includes('/')
              ? `drop the version: "${group.split('/')[0]}"`
              : 'an API group is a lower-case DNS subdomain such as "apps" or "rbac.authorization.k8s.io"; "" is the core group';
        out.push(
          error(
            'KAUDIT_POLICY_GROUP',
            `${at}.resources[${j}].group`,
            `invalid API group ${JSON.stringify(group)}`,
            hint,
          ),
        );
      }
      if ((gr.resourceNames ?? []).length > 0 && (gr.resources ?? []).length === 0) {
        out.push(
          error(
            'KAUDIT_POLICY_RESOURCE_NAMES',
            `${at}.resources[${j}].resourceNames`,
            'resourceNames requires at least one resource',
            'add resources: [...] to this entry',
          ),
        );
      }
    });
    validateStages(rule.omitStages, `${at}.omitStages`, out);
    if (
      (rule.nonResourceURLs ?? []).length > 0 &&
      ((rule.resources ?? []).length > 0 || (rule.namespaces ?? []).length > 0)
    ) {
      out.push(
        error(
          'KAUDIT_POLICY_MIXED_KINDS',
          `${at}.nonResourceURLs`,
          'a rule cannot apply to both resources/namespaces and non-resource URLs',
          'split it into two rules',
        ),
      );
    }
  });
  return out;
}
