import type { Diagnostic } from '../model/errors.js';
import { type PolicyFeatures, policyFeatures } from './kube-version.js';
import { lintPolicy } from './lint.js';
import { type LoadedPolicy, type LoadOptions, loadPolicyText } from './load.js';

export interface LintedPolicy {
  /** The ConfigMap data key, for a ConfigMap file. */
  entry?: string;
  diagnostics: Diagnostic[];
}

/** Loader problems plus lint findings for one loaded policy, with file positions, in file order. */
export function lintLoaded(loaded: LoadedPolicy, features: PolicyFeatures, file?: string): Diagnostic[] {
  const fileName =
    file === undefined ? undefined : loaded.entry === undefined ? file : `${file}#${loaded.entry}`;
  const findings = loaded.policy ? lintPolicy(loaded.policy, features) : [];
  const placed = findings.map((d) => {
    const pos = d.path === undefined ? undefined : loaded.locate(d.path);
    return {
      ...d,
      ...(fileName === undefined ? {} : { file: fileName }),
      ...(pos ? { line: pos.line, column: pos.column } : {}),
    };
  });
  return [...loaded.diagnostics, ...placed].sort(
    (a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
  );
}

/** Loads and lints a policy file's text (one result per policy; a ConfigMap may hold several). */
export function lintPolicyText(text: string, opts: LoadOptions = {}): LintedPolicy[] {
  const features = opts.features ?? policyFeatures();
  return loadPolicyText(text, opts).map((loaded) => {
    const diagnostics = lintLoaded(loaded, features, opts.file);
    return loaded.entry === undefined ? { diagnostics } : { entry: loaded.entry, diagnostics };
  });
}
