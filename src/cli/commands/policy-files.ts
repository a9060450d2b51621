import { readFileSync } from 'node:fs';
import { Option } from 'commander';
import { expandInputs, type SkippedInput } from '../../collect/ingest.js';
import { UserError } from '../../model/errors.js';
import { type ReadEvent, readAuditEvents } from '../../model/read-events.js';
import {
  formatKubeVersion,
  NEWEST_KUBERNETES_VERSION,
  type PolicyFeatures,
  parseKubeVersion,
  policyFeatures,
} from '../../policy/kube-version.js';
import { loadPolicyOrThrow } from '../../policy/load.js';
import type { Policy } from '../../policy/types.js';

export interface PolicySourceFlags {
  kubernetesVersion?: string;
  fragment?: boolean;
  entry?: string;
}

export function kubernetesVersionOption(): Option {
  return new Option(
    '--kubernetes-version <v>',
    `the kube-apiserver version whose behaviour to reproduce (default ${formatKubeVersion(NEWEST_KUBERNETES_VERSION)})`,
  );
}

export function fragmentOption(): Option {
  return new Option(
    '--fragment',
    'the file is a bare list of rules (a template fragment): check it as the rules of a Policy',
  );
}

export function entryOption(): Option {
  return new Option(
    '--entry <key>',
    'for a ConfigMap holding several policies: the data key of the one to use',
  );
}

export function featuresFrom(flags: PolicySourceFlags): PolicyFeatures {
  return policyFeatures(
    flags.kubernetesVersion === undefined ? undefined : parseKubeVersion(flags.kubernetesVersion),
  );
}

export function readTextFile(path: string, what: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError('KAUDIT_FILE_UNREADABLE', `cannot read ${what} ${path}: ${code ?? String(err)}`, {
      ...(code === 'ENOENT' ? { hint: 'check the path' } : {}),
      cause: err,
    });
  }
}

/** Reads and loads one valid policy; every problem goes into the UserError. */
export function readPolicy(
  path: string,
  flags: PolicySourceFlags,
): { policy: Policy; features: PolicyFeatures } {
  const features = featuresFrom(flags);
  const opts = {
    file: path,
    features,
    fragment: flags.fragment === true,
    ...(flags.entry === undefined ? {} : { entry: flags.entry }),
  };
  return { policy: loadPolicyOrThrow(readTextFile(path, 'policy'), opts), features };
}

/** Every event of the given audit logs, in order; malformed records are counted and reported on stderr. */
/**
 * The events of log files and directories (read recursively, as `kaudit ingest` reads them).
 * Malformed records are counted and said on stderr; a file holding no audit event at all is an
 * error naming it, never a silently empty result.
 */
export interface MalformedReport {
  path: string;
  /** Records that are not audit events. */
  malformed: number;
  /** Audit events read from the file. */
  events: number;
  /** Where the first bad record is and why. */
  first: string;
}

export async function* readLogs(
  paths: readonly string[],
  /** Told of each file with malformed records instead of the default (a line on stderr; no event at all is an error). */
  onMalformed?: (report: MalformedReport) => void,
): AsyncGenerator<ReadEvent> {
  const skipped: SkippedInput[] = [];
  const files = await expandInputs(paths, skipped);
  if (skipped.length > 0)
    throw new UserError(
      'KAUDIT_FILE_UNREADABLE',
      skipped.map((s) => `cannot read audit log ${s.path}: ${s.reason}`).join('; '),
      { hint: 'check the path' },
    );
  for (const { path } of files) {
    let malformed = 0;
    let events = 0;
    let first = '';
    for await (const e of readAuditEvents(path === '-' ? process.stdin : path, {
      onMalformed: (m) => {
        malformed++;
        if (first === '') first = `at byte ${m.offset}: ${m.reason}`;
      },
    })) {
      events++;
      yield e;
    }
    if (malformed > 0 && onMalformed !== undefined) {
      onMalformed({ path, malformed, events, first });
      continue;
    }
    if (events === 0 && malformed > 0)
      throw new UserError(
        'KAUDIT_NOT_AUDIT_LOG',
        `${path} is not an audit log: none of its ${malformed} record(s) is an audit event, first ${first}`,
        {
          hint: 'give kube-apiserver audit logs (JSON lines, EventList, GKE/AKS exports), plain or gzip',
        },
      );
    if (malformed > 0)
      process.stderr.write(`kaudit: ${path}: skipped ${malformed} malformed record(s), first ${first}\n`);
  }
}

export function formatBytes(n: number | null): string {
  if (n === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}
