import { posix } from 'node:path';
import {
  type Document,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  Scalar,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { UserError } from '../model/errors.js';

/** The seed's paths (Datadog's Kubernetes audit set-up): the agent configs and docs assume them. */
export const DEFAULT_POLICY_FILE = '/etc/kubernetes/audit-policies/policy.yaml';
export const DEFAULT_LOG_PATH = '/var/log/kubernetes/apiserver/audit.log';
export const DEFAULT_WEBHOOK_CONFIG_FILE = '/etc/kubernetes/kaudit/webhook.kubeconfig';
export const DEFAULT_MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml';

export const DEFAULT_LOG_MAX_AGE_DAYS = 7;
export const DEFAULT_LOG_MAX_BACKUPS = 10;
export const DEFAULT_LOG_MAX_SIZE_MB = 100;
export const DEFAULT_WEBHOOK_BATCH_MAX_SIZE = 400;
export const DEFAULT_WEBHOOK_BATCH_MAX_WAIT = '5s';

/** Names of the volumes this command adds; a second run finds them by what they mount, not by name. */
const VOLUME_NAMES = {
  policy: 'kaudit-audit-policy',
  log: 'kaudit-audit-log',
  webhook: 'kaudit-audit-webhook',
} as const;

export interface ApiserverSetupOptions {
  /** Path inside the kube-apiserver container; default: the manifest's, else DEFAULT_POLICY_FILE. */
  policyFile?: string;
  logPath?: string;
  /** Unset: keep the manifest's value, else the default. */
  logMaxAgeDays?: number;
  logMaxBackups?: number;
  logMaxSizeMb?: number;
  /** Adds the webhook backend's flags and mounts the kubeconfig's directory. */
  webhook?: {
    configFile?: string;
    batchMaxSize?: number;
    batchMaxWait?: string;
  };
}

export interface ManifestChange {
  what: 'flag' | 'volume' | 'volumeMount';
  name: string;
  /** The old value of a flag; undefined when it was missing. */
  before?: string;
  after: string;
}

export interface ApiserverSetupResult {
  text: string;
  changes: ManifestChange[];
  /** Where the files the flags name are on the host (hostPath volumes may map them elsewhere). */
  hostPaths: { policyFile: string; logDir: string; webhookConfigFile?: string };
  /** The values in effect after the change. */
  flags: Record<string, string>;
}

type Container = YAMLMap<unknown, unknown>;

const refuse = (file: string, why: string, hint?: string): UserError =>
  new UserError('KAUDIT_SETUP_NOT_APISERVER', `${file}: ${why}`, hint === undefined ? {} : { hint });

const str = (node: unknown): string | undefined =>
  isScalar(node) && typeof node.value === 'string' ? node.value : undefined;

/** `a` is `b` or inside it, comparing whole path segments. */
function within(path: string, dir: string): boolean {
  const d = dir.endsWith('/') && dir !== '/' ? dir.slice(0, -1) : dir;
  return path === d || path.startsWith(d === '/' ? '/' : `${d}/`);
}

/** Finds the kube-apiserver container of a static Pod manifest, or says why this is not one. */
function findContainer(doc: Document, file: string): Container {
  const kind = doc.get('kind');
  if (kind !== 'Pod') {
    throw refuse(
      file,
      kind === undefined ? 'not a Kubernetes object (no kind)' : `is a ${String(kind)}, not a Pod`,
      'give the kube-apiserver static Pod manifest, e.g. /etc/kubernetes/manifests/kube-apiserver.yaml',
    );
  }
  const containers = doc.getIn(['spec', 'containers']);
  if (!isSeq(containers)) throw refuse(file, 'the Pod has no spec.containers list');
  const names: string[] = [];
  for (const c of containers.items) {
    if (!isMap(c)) continue;
    const name = str(c.get('name', true)) ?? '';
    names.push(name);
    const command = c.get('command');
    const first = isSeq(command) ? str(command.items[0]) : undefined;
    if (first !== undefined && /^(sh|bash|\/bin\/sh|\/bin\/bash)$/.test(first) && name === 'kube-apiserver') {
      throw refuse(
        file,
        'kube-apiserver is started through a shell (command: [sh, -c, ...]); its flags are one string',
        'add the audit flags by hand, or run kube-apiserver without the shell',
      );
    }
    if (name === 'kube-apiserver' || (first !== undefined && posix.basename(first) === 'kube-apiserver'))
      return c as Container;
  }
  throw refuse(
    file,
    `no kube-apiserver container in the Pod (containers: ${names.join(', ') || 'none'})`,
    'give the kube-apiserver static Pod manifest',
  );
}

/** The list kube-apiserver's flags are in: args when the manifest uses it, else command (kubeadm). */
class FlagList {
  constructor(
    private readonly doc: Document,
    private readonly seq: YAMLSeq<unknown>,
    private readonly first: number,
  ) {}

  private find(name: string): { index: number; separate: boolean } | undefined {
    const items = this.seq.items;
    for (let i = this.first; i < items.length; i++) {
      const s = str(items[i]);
      if (s === `--${name}`) return { index: i, separate: true };
      if (s?.startsWith(`--${name}=`)) return { index: i, separate: false };
    }
    return undefined;
  }

  get(name: string): string | undefined {
    const at = this.find(name);
    if (at === undefined) return undefined;
    if (!at.separate) return str(this.seq.items[at.index])?.slice(name.length + 3);
    const next = str(this.seq.items[at.index + 1]);
    return next !== undefined && !next.startsWith('--') ? next : 'true';
  }

  /** Sets a flag; a new one goes where kubeadm's alphabetical order puts it. */
  set(name: string, value: string): void {
    const at = this.find(name);
    if (at !== undefined) {
      const next = str(this.seq.items[at.index + 1]);
      if (at.separate && next !== undefined && !next.startsWith('--')) {
        this.seq.items[at.index + 1] = this.doc.createNode(value);
      } else {
        const node = this.seq.items[at.index];
        if (isScalar(node)) node.value = `--${name}=${value}`;
        else this.seq.items[at.index] = this.doc.createNode(`--${name}=${value}`);
      }
      return;
    }
    const items = this.seq.items;
    let index = items.length;
    for (let i = this.first; i < items.length; i++) {
      const s = str(items[i]);
      if (s?.startsWith('--') && (s.slice(2).split('=')[0] ?? '') > name) {
        index = i;
        break;
      }
    }
    items.splice(index, 0, new Scalar(`--${name}=${value}`));
  }
}

function flagList(doc: Document, container: Container, file: string): FlagList {
  const args = container.get('args');
  if (isSeq(args)) return new FlagList(doc, args, 0);
  const command = container.get('command');
  if (isSeq(command)) return new FlagList(doc, command, 1);
  throw refuse(file, 'the kube-apiserver container has neither command nor args');
}

interface Mounted {
  /** Host path of the container path. */
  hostPath: string;
  readOnly: boolean;
  volume: string;
}

/** Where a container path is on the host, through the container's volumeMounts and the Pod's hostPath volumes. */
function resolveMount(
  doc: Document,
  container: Container,
  path: string,
): Mounted | 'not-hostpath' | undefined {
  const mounts = container.get('volumeMounts');
  if (!isSeq(mounts)) return undefined;
  let best: { mountPath: string; name: string; readOnly: boolean } | undefined;
  for (const m of mounts.items) {
    if (!isMap(m)) continue;
    const mountPath = str(m.get('mountPath', true));
    const name = str(m.get('name', true));
    if (mountPath === undefined || name === undefined || !within(path, mountPath)) continue;
    if (best === undefined || mountPath.length > best.mountPath.length)
      best = { mountPath, name, readOnly: m.get('readOnly') === true };
  }
  if (best === undefined) return undefined;
  const volumes = doc.getIn(['spec', 'volumes']);
  if (!isSeq(volumes)) return 'not-hostpath';
  for (const v of volumes.items) {
    if (!isMap(v) || str(v.get('name', true)) !== best.name) continue;
    const hostPath = v.getIn(['hostPath', 'path']);
    if (typeof hostPath !== 'string') return 'not-hostpath';
    const rest = path.slice(best.mountPath.replace(/\/$/, '').length);
    return { hostPath: posix.join(hostPath, rest), readOnly: best.readOnly, volume: best.name };
  }
  return 'not-hostpath';
}

/** Inserts a map into a list of maps keeping it sorted by `name`, as kubeadm writes volumes and mounts. */
function insertByName(seq: YAMLSeq<unknown>, node: unknown, name: string): void {
  let index = seq.items.length;
  for (let i = 0; i < seq.items.length; i++) {
    const item = seq.items[i];
    const n = isMap(item) ? str(item.get('name', true)) : undefined;
    if (n !== undefined && n > name) {
      index = i;
      break;
    }
  }
  seq.items.splice(index, 0, node);
}

function seqAt(doc: Document, map: YAMLMap<unknown, unknown>, key: string): YAMLSeq<unknown> {
  const existing = map.get(key);
  if (isSeq(existing)) return existing as YAMLSeq<unknown>;
  const seq = doc.createNode([]) as YAMLSeq<unknown>;
  map.set(key, seq);
  return seq;
}

/**
 * Whether the file indents list items under their key. kubeadm does not; a hand-written manifest may.
 * The layout that reproduces more of the file's lines is kept, so unchanged lines stay as they were.
 */
function layoutOf(doc: Document, text: string): boolean {
  const lines = new Set(text.split('\n'));
  const score = (indentSeq: boolean) =>
    doc
      .toString({ indentSeq, lineWidth: 0 })
      .split('\n')
      .filter((l) => lines.has(l)).length;
  return score(true) > score(false);
}

/**
 * Adds or corrects the audit flags, volumes and mounts of a kube-apiserver static Pod manifest.
 * Everything else is left byte for byte; the result of a second run equals the first.
 */
export function setupApiserverManifest(
  text: string,
  options: ApiserverSetupOptions = {},
  file = 'manifest',
): ApiserverSetupResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const bad = doc.errors[0];
  if (bad !== undefined) {
    const pos = bad.linePos?.[0];
    const message = (bad.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new UserError(
      'KAUDIT_SETUP_MANIFEST_YAML',
      `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${message}`,
    );
  }
  const container = findContainer(doc, file);
  const indentSeq = layoutOf(doc, text);
  const flags = flagList(doc, container, file);
  const changes: ManifestChange[] = [];
  const set = (name: string, value: string): void => {
    const before = flags.get(name);
    if (before === value) return;
    flags.set(name, value);
    changes.push({
      what: 'flag',
      name: `--${name}`,
      ...(before === undefined ? {} : { before }),
      after: value,
    });
  };
  const keepOr = (name: string, given: string | number | undefined, fallback: string | number): void => {
    set(name, String(given ?? flags.get(name) ?? fallback));
  };

  const policyFile = options.policyFile ?? flags.get('audit-policy-file') ?? DEFAULT_POLICY_FILE;
  const currentLog = flags.get('audit-log-path');
  // "-" sends the log to kube-apiserver's stdout, where no file source can tail it.
  const logPath =
    options.logPath ?? (currentLog === undefined || currentLog === '-' ? DEFAULT_LOG_PATH : currentLog);
  for (const [name, p] of [
    ['--audit-policy-file', policyFile],
    ['--audit-log-path', logPath],
  ] as const) {
    if (!posix.isAbsolute(p))
      throw new UserError('KAUDIT_FLAG_INVALID', `${name} ${JSON.stringify(p)}: must be an absolute path`);
  }
  set('audit-policy-file', policyFile);
  set('audit-log-path', logPath);
  // The agent reads JSON lines; "legacy" is a text format meant for people.
  set('audit-log-format', 'json');
  keepOr('audit-log-maxage', options.logMaxAgeDays, DEFAULT_LOG_MAX_AGE_DAYS);
  keepOr('audit-log-maxbackup', options.logMaxBackups, DEFAULT_LOG_MAX_BACKUPS);
  keepOr('audit-log-maxsize', options.logMaxSizeMb, DEFAULT_LOG_MAX_SIZE_MB);

  let webhookConfigFile: string | undefined;
  if (options.webhook !== undefined) {
    webhookConfigFile =
      options.webhook.configFile ?? flags.get('audit-webhook-config-file') ?? DEFAULT_WEBHOOK_CONFIG_FILE;
    if (!posix.isAbsolute(webhookConfigFile))
      throw new UserError(
        'KAUDIT_FLAG_INVALID',
        `--audit-webhook-config-file ${JSON.stringify(webhookConfigFile)}: must be an absolute path`,
      );
    set('audit-webhook-config-file', webhookConfigFile);
    // batch: requests are sent in the background; blocking modes would hold every API request up.
    set('audit-webhook-mode', 'batch');
    keepOr('audit-webhook-batch-max-size', options.webhook.batchMaxSize, DEFAULT_WEBHOOK_BATCH_MAX_SIZE);
    keepOr('audit-webhook-batch-max-wait', options.webhook.batchMaxWait, DEFAULT_WEBHOOK_BATCH_MAX_WAIT);
    set('audit-webhook-version', 'audit.k8s.io/v1');
  }

  const spec = doc.get('spec', true);
  if (!isMap(spec)) throw refuse(file, 'the Pod has no spec');
  const ensureMount = (
    path: string,
    as: { name: string; readOnly: boolean; type: 'File' | 'DirectoryOrCreate'; why: string },
  ): string => {
    const found = resolveMount(doc, container, path);
    if (found === 'not-hostpath') {
      throw new UserError(
        'KAUDIT_SETUP_CONFLICT',
        `${file}: ${path} (${as.why}) is inside a volume that is not a hostPath, so it is not a file on the node`,
        { hint: 'use another path, or mount a hostPath there' },
      );
    }
    if (found !== undefined) {
      if (found.readOnly && !as.readOnly) {
        throw new UserError(
          'KAUDIT_SETUP_CONFLICT',
          `${file}: volume ${found.volume} mounts ${path} read-only, but kube-apiserver must write ${as.why} there`,
          { hint: `remove readOnly from that volumeMount, or give --log-path outside it` },
        );
      }
      return found.hostPath;
    }
    const volumes = seqAt(doc, spec as YAMLMap<unknown, unknown>, 'volumes');
    const taken = volumes.items.some((v) => isMap(v) && str(v.get('name', true)) === as.name);
    if (taken) {
      throw new UserError(
        'KAUDIT_SETUP_CONFLICT',
        `${file}: a volume named ${as.name} exists but does not mount ${path}`,
        { hint: 'rename or remove that volume, then run again' },
      );
    }
    const mount: Record<string, unknown> = { mountPath: path, name: as.name };
    if (as.readOnly) mount.readOnly = true;
    insertByName(seqAt(doc, container, 'volumeMounts'), doc.createNode(mount), as.name);
    insertByName(volumes, doc.createNode({ hostPath: { path, type: as.type }, name: as.name }), as.name);
    changes.push({
      what: 'volumeMount',
      name: as.name,
      after: `${path}${as.readOnly ? ' (read-only)' : ''}`,
    });
    changes.push({ what: 'volume', name: as.name, after: `hostPath ${path} (${as.type})` });
    return path;
  };

  const policyHost = ensureMount(policyFile, {
    name: VOLUME_NAMES.policy,
    readOnly: true,
    type: 'File',
    why: 'the audit policy',
  });
  const logDirHost = ensureMount(posix.dirname(logPath), {
    name: VOLUME_NAMES.log,
    readOnly: false,
    type: 'DirectoryOrCreate',
    why: 'the audit log',
  });
  const hostPaths: ApiserverSetupResult['hostPaths'] = { policyFile: policyHost, logDir: logDirHost };
  if (webhookConfigFile !== undefined) {
    // The directory, not the file: the kubeconfig names the CA and client certificate beside it.
    const dirHost = ensureMount(posix.dirname(webhookConfigFile), {
      name: VOLUME_NAMES.webhook,
      readOnly: true,
      type: 'DirectoryOrCreate',
      why: 'the webhook kubeconfig and its certificates',
    });
    hostPaths.webhookConfigFile = posix.join(dirHost, posix.basename(webhookConfigFile));
  }

  const effective: Record<string, string> = {};
  for (const name of [
    'audit-policy-file',
    'audit-log-path',
    'audit-log-format',
    'audit-log-maxage',
    'audit-log-maxbackup',
    'audit-log-maxsize',
    'audit-webhook-config-file',
    'audit-webhook-mode',
    'audit-webhook-batch-max-size',
    'audit-webhook-batch-max-wait',
    'audit-webhook-version',
  ]) {
    const v = flags.get(name);
    if (v !== undefined) effective[`--${name}`] = v;
  }
  const out = changes.length === 0 ? text : doc.toString({ indentSeq, lineWidth: 0 });
  return { text: out, changes, hostPaths, flags: effective };
}

export interface ApiserverManifestView {
  /** Every `--flag=value` of kube-apiserver, by flag name without dashes. */
  flags: Map<string, string>;
  /** The host path of a path inside the container, through its hostPath mounts; undefined when not mounted. */
  hostPathOf(path: string): string | undefined;
}

/** Reads a kube-apiserver static Pod manifest without changing it (for `kaudit doctor`). */
export function inspectApiserverManifest(text: string, file = 'manifest'): ApiserverManifestView {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0)
    throw refuse(file, `not valid YAML: ${doc.errors[0]?.message.split('\n')[0] ?? ''}`);
  const container = findContainer(doc, file);
  const seqs = [container.get('command'), container.get('args')].filter(isSeq);
  const flags = new Map<string, string>();
  for (const seq of seqs) flagsOf(seq.items.map(str), flags);
  return {
    flags,
    hostPathOf: (path) => {
      const m = resolveMount(doc, container, path);
      return typeof m === 'object' ? m.hostPath : undefined;
    },
  };
}

/** `--name=value` and `--name value` items of an argument list into `into`. */
export function flagsOf(
  argv: readonly (string | undefined)[],
  into = new Map<string, string>(),
): Map<string, string> {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === undefined || !a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) into.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        into.set(a.slice(2), next);
        i++;
      } else into.set(a.slice(2), 'true');
    }
  }
  return into;
}
