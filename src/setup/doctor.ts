import { accessSync, constants, existsSync, readdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, join, posix } from 'node:path';
import { parse } from 'yaml';
import { type Diagnostic, formatDiagnostic } from '../model/errors.js';
import { processAlive } from '../model/process.js';
import { lintPolicyText } from '../policy/lint-file.js';
import { DEFAULT_MANIFEST, flagsOf, inspectApiserverManifest } from './apiserver-manifest.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable id, for --json readers. */
  id: string;
  status: CheckStatus;
  /** What was found, in one line. */
  detail: string;
  /** What to do about a warn or fail, in one line. */
  fix?: string;
}

/** What `kaudit doctor` is told about the agent's config; the CLI parses it (collect owns the format). */
export interface AgentConfigSummary {
  file: string;
  /** Formatted problems; the config is unusable when there are any. */
  problems: string[];
  runPath?: string;
  dataDir?: string;
  filePaths: string[];
  webhooks: { name: string; listen: string; path: string; tls: boolean }[];
}

export interface AgentLocation {
  pid: number;
  admin: string;
}

/** The parts of the agent's /status that doctor reads (collect/agent.ts AgentStatus). */
interface StatusView {
  logs?: {
    type?: string;
    name?: string;
    path?: string;
    status?: string;
    error?: string;
    filesMatching?: number;
    filesTailed?: number;
    lagSeconds?: number;
  }[];
  store?: { status?: string; error?: string; newest?: string | null; location?: string };
}

export interface DoctorInputs {
  /** --manifest; undefined: the kubeadm path if it exists, else a running kube-apiserver. */
  manifest?: string;
  /** Prefix of host paths (a chroot, or a test's fake root). */
  rootfs: string;
  procDir: string;
  /** --policy: check this file instead of the one kube-apiserver's flags name. */
  policy?: string;
  config?: AgentConfigSummary;
  /** Looked at for a config, in order (for the message when none is found). */
  configCandidates: string[];
  /** The data directory used when there is no config (--data, KAUDIT_DATA, ./kaudit-data). */
  defaultDataDir: string;
  readLocator: (dir: string) => Promise<AgentLocation | undefined>;
  maxEventAgeMs: number;
  minFreeBytes: number;
  now: number;
  timeoutMs: number;
}

const ok = (id: string, detail: string): CheckResult => ({ id, status: 'ok', detail });
const warn = (id: string, detail: string, fix: string): CheckResult => ({ id, status: 'warn', detail, fix });
const fail = (id: string, detail: string, fix: string): CheckResult => ({ id, status: 'fail', detail, fix });
const skip = (id: string, detail: string): CheckResult => ({ id, status: 'skip', detail });

interface ApiserverFound {
  source: string;
  flags: Map<string, string>;
  hostPathOf: (p: string) => string | undefined;
}

/** kube-apiserver's command line from /proc, when it runs on this machine (in a container or not). */
function findApiserverProcess(procDir: string): ApiserverFound | undefined {
  let entries: string[];
  try {
    entries = readdirSync(procDir);
  } catch {
    return undefined;
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    let argv: string[];
    try {
      argv = readFileSync(join(procDir, pid, 'cmdline'), 'utf8').split('\0');
    } catch {
      continue;
    }
    if (posix.basename(argv[0] ?? '') !== 'kube-apiserver') continue;
    // The paths are the container's; kubeadm mounts each at the same path on the host.
    return { source: `process ${pid}`, flags: flagsOf(argv.slice(1)), hostPathOf: (p) => p };
  }
  return undefined;
}

function onHost(rootfs: string, p: string): string {
  return rootfs === '/' ? p : join(rootfs, p);
}

function checkApiserver(inputs: DoctorInputs): { result: CheckResult; found?: ApiserverFound } {
  const id = 'apiserver-flags';
  const manifest = inputs.manifest ?? onHost(inputs.rootfs, DEFAULT_MANIFEST);
  let found: ApiserverFound | undefined;
  if (existsSync(manifest)) {
    try {
      const view = inspectApiserverManifest(readFileSync(manifest, 'utf8'), manifest);
      found = { source: manifest, flags: view.flags, hostPathOf: view.hostPathOf };
    } catch (err) {
      return {
        result: fail(
          id,
          (err as Error).message,
          'give the kube-apiserver static Pod manifest with --manifest',
        ),
      };
    }
  } else if (inputs.manifest !== undefined) {
    return { result: fail(id, `no manifest at ${manifest}`, 'check --manifest') };
  } else {
    found = findApiserverProcess(inputs.procDir);
  }
  if (found === undefined) {
    return {
      result: fail(
        id,
        `no kube-apiserver here: no ${manifest} and no kube-apiserver process`,
        'run on a control-plane node or give --manifest FILE; for EKS, GKE or AKS see docs/managed-clusters.md',
      ),
    };
  }
  const f = found.flags;
  const setup = `kaudit setup apiserver --manifest ${found.source.startsWith('process') ? DEFAULT_MANIFEST : found.source} --write`;
  const missing: string[] = [];
  if (!f.has('audit-policy-file')) missing.push('--audit-policy-file');
  if (!f.has('audit-log-path') && !f.has('audit-webhook-config-file'))
    missing.push('--audit-log-path (or --audit-webhook-config-file)');
  if (missing.length > 0) {
    return {
      result: fail(
        id,
        `${found.source}: kube-apiserver has no ${missing.join(' and no ')}: it audits nothing`,
        setup,
      ),
      found,
    };
  }
  const logPath = f.get('audit-log-path');
  if (logPath === '-') {
    return {
      result: warn(
        id,
        `${found.source}: --audit-log-path=- writes the audit log to stdout, which no agent tails`,
        setup,
      ),
      found,
    };
  }
  if (logPath !== undefined && (f.get('audit-log-format') ?? 'json') !== 'json') {
    return {
      result: fail(
        id,
        `${found.source}: --audit-log-format=${f.get('audit-log-format')}: the agent reads json`,
        setup,
      ),
      found,
    };
  }
  // kube-apiserver's defaults: maxsize 0 never rotates, maxbackup 0 keeps every rotated file.
  if (logPath !== undefined && (!f.has('audit-log-maxsize') || !f.has('audit-log-maxbackup'))) {
    return {
      result: warn(
        id,
        `${found.source}: no --audit-log-maxsize/--audit-log-maxbackup: the log grows until the disk is full`,
        setup,
      ),
      found,
    };
  }
  const sinks = [
    logPath && `log ${logPath}`,
    f.get('audit-webhook-config-file') && `webhook ${f.get('audit-webhook-config-file')}`,
  ]
    .filter(Boolean)
    .join(', ');
  return { result: ok(id, `${found.source}: policy ${f.get('audit-policy-file')}, ${sinks}`), found };
}

function checkPolicy(inputs: DoctorInputs, found: ApiserverFound | undefined): CheckResult {
  const id = 'audit-policy';
  let path = inputs.policy;
  if (path === undefined) {
    const flag = found?.flags.get('audit-policy-file');
    if (flag === undefined)
      return skip(id, 'no policy file to check (no kube-apiserver flags; give --policy FILE)');
    const host = found?.hostPathOf(flag);
    if (host === undefined)
      return fail(
        id,
        `--audit-policy-file ${flag} is not on a hostPath volume of the Pod`,
        'kaudit setup apiserver --write adds the volume',
      );
    path = onHost(inputs.rootfs, host);
  }
  if (!existsSync(path))
    return fail(
      id,
      `${path} does not exist: kube-apiserver will not start`,
      `kaudit policy generate > ${path}`,
    );
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fail(
      id,
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      'run doctor as root',
    );
  }
  const diagnostics = lintPolicyText(text, { file: path }).flatMap((p) => p.diagnostics);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  const warnings = diagnostics.filter((d) => d.severity === 'warning');
  const first = errors[0] ?? warnings[0];
  const oneLine = (d: Diagnostic) => formatDiagnostic({ ...d, hint: '' }).split('\n')[0];
  if (errors.length > 0 && first)
    return fail(id, `${errors.length} error(s), first: ${oneLine(first)}`, `kaudit policy lint ${path}`);
  if (warnings.length > 0 && first)
    return warn(id, `${warnings.length} warning(s), first: ${oneLine(first)}`, `kaudit policy lint ${path}`);
  return ok(id, `${path} lints clean`);
}

function checkLogDir(inputs: DoctorInputs, found: ApiserverFound | undefined): CheckResult {
  const id = 'audit-log-dir';
  const dirs = new Set<string>();
  const flag = found?.flags.get('audit-log-path');
  if (flag !== undefined && flag !== '-') {
    const host = found?.hostPathOf(posix.dirname(flag));
    if (host === undefined)
      return fail(
        id,
        `the directory of --audit-log-path ${flag} is not on a hostPath volume: the log stays inside the container`,
        'kaudit setup apiserver --write adds the volume',
      );
    dirs.add(onHost(inputs.rootfs, host));
  }
  for (const p of inputs.config?.filePaths ?? []) {
    // A glob's directory part up to its first wildcard.
    const fixed = p.split('/').findIndex((s) => /[*?[]/.test(s));
    const dir = fixed < 0 ? dirname(p) : p.split('/').slice(0, fixed).join('/') || '/';
    dirs.add(dir);
  }
  if (dirs.size === 0) return skip(id, 'no audit log path (no --audit-log-path and no file source)');
  for (const dir of dirs) {
    if (!existsSync(dir))
      return fail(
        id,
        `${dir} does not exist`,
        'kube-apiserver creates it once it runs with --audit-log-path; check the path and the hostPath volume',
      );
    try {
      accessSync(dir, constants.R_OK | constants.X_OK);
    } catch {
      return fail(
        id,
        `${dir} is not readable by this user`,
        'run the agent (and doctor) as root, or give its user read access to the directory',
      );
    }
  }
  return ok(id, `${[...dirs].join(', ')} readable`);
}

async function getJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

async function checkAgent(inputs: DoctorInputs): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const config = inputs.config;
  if (config === undefined) {
    results.push(
      skip(
        'agent-config',
        `no agent config (looked at ${inputs.configCandidates.join(', ') || 'nothing'}); checking the data directory ${inputs.defaultDataDir}`,
      ),
    );
  } else if (config.problems.length > 0) {
    results.push(
      fail(
        'agent-config',
        `${config.problems.length} problem(s) in ${config.file}, first: ${config.problems[0]}`,
        `fix ${config.file} (docs/agent.md)`,
      ),
    );
  } else {
    results.push(ok('agent-config', `${config.file} is valid`));
  }
  const dirs = [
    config?.runPath,
    config?.dataDir,
    config === undefined ? inputs.defaultDataDir : undefined,
  ].filter((d): d is string => d !== undefined);
  let located: AgentLocation | undefined;
  for (const dir of dirs) {
    const loc = await inputs.readLocator(dir);
    if (loc !== undefined && processAlive(loc.pid)) {
      located = loc;
      break;
    }
  }
  const start = config
    ? `kaudit agent --config ${config.file}`
    : 'kaudit agent --config kaudit.yaml (docs/agent.md), or deploy/kubernetes';
  if (located === undefined) {
    results.push(
      fail(
        'agent-running',
        `no running agent announced itself (no live agent.json in ${dirs.join(', ')})`,
        start,
      ),
    );
    return results;
  }
  let status: StatusView;
  try {
    const health = await getJson(`${located.admin}/healthz`, inputs.timeoutMs);
    const s = await getJson(`${located.admin}/status`, inputs.timeoutMs);
    status = s.body as StatusView;
    if (health.status !== 200) {
      const errors = (health.body as { errors?: string[] }).errors ?? [];
      results.push(
        fail(
          'agent-running',
          `agent PID ${located.pid} at ${located.admin} is unhealthy: ${errors.join('; ')}`,
          'kaudit status shows each source and the store',
        ),
      );
    } else {
      results.push(ok('agent-running', `agent PID ${located.pid} answers at ${located.admin}`));
    }
  } catch (err) {
    results.push(
      fail(
        'agent-running',
        `agent PID ${located.pid} does not answer at ${located.admin}: ${(err as Error).message}`,
        'it may be starting or stuck; kaudit status, or restart it',
      ),
    );
    return results;
  }

  const files = (status.logs ?? []).filter((l) => l.type === 'file');
  if (files.length === 0) results.push(skip('agent-tailing', 'the agent has no file source'));
  for (const l of files) {
    const name = l.path ?? l.name ?? 'file source';
    if (l.status !== 'OK')
      results.push(
        fail(
          'agent-tailing',
          `${name}: ${l.error ?? 'error'}`,
          'kaudit status; check the path and the mounted log directory',
        ),
      );
    else if ((l.filesMatching ?? 0) === 0)
      results.push(
        fail(
          'agent-tailing',
          `${name}: no file matches`,
          'check logs[].path against --audit-log-path and that the log directory is mounted into the agent',
        ),
      );
    else if ((l.filesTailed ?? 0) === 0)
      results.push(
        warn(
          'agent-tailing',
          `${name}: ${l.filesMatching} file(s) match but none is tailed`,
          'kaudit status',
        ),
      );
    else if ((l.lagSeconds ?? 0) > 60)
      results.push(
        warn(
          'agent-tailing',
          `${name}: ${Math.round(l.lagSeconds ?? 0)} s behind`,
          'the store is slower than the log: see docs/agent.md Performance',
        ),
      );
    else
      results.push(
        ok(
          'agent-tailing',
          `${name}: tailing ${l.filesTailed} of ${l.filesMatching} file(s), ${(l.lagSeconds ?? 0).toFixed(1)} s behind`,
        ),
      );
  }

  const newest = status.store?.newest ?? null;
  if (status.store?.status !== undefined && status.store.status !== 'OK') {
    results.push(
      fail(
        'agent-freshness',
        `store ${status.store.location ?? ''}: ${status.store.error ?? 'error'}`,
        'kaudit status',
      ),
    );
  } else if (newest === null) {
    results.push(
      warn(
        'agent-freshness',
        'the store holds no event yet',
        'check that kube-apiserver writes the log the agent tails (or sends the webhook)',
      ),
    );
  } else {
    const ageMs = inputs.now - Date.parse(newest);
    const age = `${Math.round(ageMs / 1000)} s`;
    results.push(
      ageMs > inputs.maxEventAgeMs
        ? warn(
            'agent-freshness',
            `the newest event is ${age} old (${newest})`,
            'check kube-apiserver is auditing and the agent reads the current file (kaudit status)',
          )
        : ok('agent-freshness', `the newest event is ${age} old`),
    );
  }
  return results;
}

/** An HTTPS request to each webhook receiver: any HTTP answer means it listens. */
async function checkWebhooks(
  inputs: DoctorInputs,
  found: ApiserverFound | undefined,
): Promise<CheckResult[]> {
  const targets: { name: string; url: string; tls: https.RequestOptions; strict: boolean }[] = [];
  for (const w of inputs.config?.webhooks ?? []) {
    const [host, port] = [w.listen.replace(/:\d+$/, ''), w.listen.replace(/^.*:/, '')];
    const local = host === '0.0.0.0' || host === '' || host === '[::]' || host === '::' ? '127.0.0.1' : host;
    targets.push({
      name: `source ${w.name}`,
      url: `${w.tls ? 'https' : 'http'}://${local}:${port}${w.path}`,
      tls: { rejectUnauthorized: false },
      strict: false,
    });
  }
  const kubeconfigFlag = found?.flags.get('audit-webhook-config-file');
  if (kubeconfigFlag !== undefined) {
    const host = found?.hostPathOf(kubeconfigFlag) ?? kubeconfigFlag;
    const file = onHost(inputs.rootfs, host);
    try {
      const target = kubeconfigTarget(file, (p) => onHost(inputs.rootfs, found?.hostPathOf(p) ?? p));
      targets.push({ name: `kube-apiserver's ${file}`, ...target, strict: true });
    } catch (err) {
      return [
        fail(
          'webhook',
          `cannot use ${file}: ${(err as Error).message}`,
          'kaudit setup webhook --kubeconfig-out FILE writes it',
        ),
      ];
    }
  }
  if (targets.length === 0) return [skip('webhook', 'no webhook configured')];
  const results: CheckResult[] = [];
  for (const t of targets) {
    try {
      const status = await post(t.url, t.tls, inputs.timeoutMs);
      // With kube-apiserver's own credentials anything but 401/403 means it would be accepted.
      if (t.strict && (status === 401 || status === 403))
        results.push(
          fail(
            'webhook',
            `${t.url} refuses ${t.name}'s credentials (HTTP ${status})`,
            "make the client certificate with the receiver's client_ca, and check tls.allowed_names",
          ),
        );
      else results.push(ok('webhook', `${t.url} answers (HTTP ${status}) for ${t.name}`));
    } catch (err) {
      results.push(
        fail(
          'webhook',
          `${t.url} (${t.name}): ${(err as Error).message}`,
          t.strict
            ? "check the URL, the receiver's certificate names (kaudit setup certs --server-name) and the CA"
            : 'is the agent running with this source? kaudit status',
        ),
      );
    }
  }
  return results;
}

function kubeconfigTarget(
  file: string,
  local: (p: string) => string,
): { url: string; tls: https.RequestOptions } {
  const kc = parse(readFileSync(file, 'utf8')) as {
    clusters?: { cluster?: Record<string, string> }[];
    users?: { user?: Record<string, string> }[];
  };
  const cluster = kc.clusters?.[0]?.cluster;
  const user = kc.users?.[0]?.user ?? {};
  if (cluster?.server === undefined) throw new Error('no clusters[0].cluster.server');
  const read = (data: string | undefined, path: string | undefined): Buffer | undefined =>
    data !== undefined
      ? Buffer.from(data, 'base64')
      : path !== undefined
        ? readFileSync(local(path))
        : undefined;
  const tls: https.RequestOptions = {};
  const ca = read(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = read(user['client-certificate-data'], user['client-certificate']);
  const key = read(user['client-key-data'], user['client-key']);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (user.tokenFile !== undefined)
    tls.headers = { authorization: `Bearer ${readFileSync(local(user.tokenFile), 'utf8').trim()}` };
  return { url: cluster.server, tls };
}

function post(url: string, tls: https.RequestOptions, timeoutMs: number): Promise<number> {
  // An empty EventList: the receiver answers 400 ("no audit events") and stores nothing.
  const body = '{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}';
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      url,
      {
        ...tls,
        method: 'POST',
        timeout: timeoutMs,
        headers: { ...(tls.headers ?? {}), 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function checkDisk(inputs: DoctorInputs): CheckResult {
  const id = 'disk-space';
  let dir = inputs.config?.dataDir ?? inputs.defaultDataDir;
  // The store may not exist yet: measure the file system it will be made on.
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    statSync(dir);
    const s = statfsSync(dir);
    const free = s.bavail * s.bsize;
    const share = s.blocks > 0 ? s.bavail / s.blocks : 1;
    const gib = (free / 2 ** 30).toFixed(1);
    if (free < inputs.minFreeBytes)
      return fail(
        id,
        `${dir}: ${gib} GiB free`,
        `free space, lower retention_days, or move data: to a larger volume`,
      );
    if (share < 0.1)
      return warn(
        id,
        `${dir}: ${gib} GiB free (${(share * 100).toFixed(0)}%)`,
        'set retention_days, or move data: to a larger volume',
      );
    return ok(id, `${dir}: ${gib} GiB free (${(share * 100).toFixed(0)}%)`);
  } catch (err) {
    return warn(id, `cannot measure ${dir}: ${(err as Error).message}`, 'check the data directory');
  }
}

/** Every check, in the order a person would go through them. */
export async function runDoctor(inputs: DoctorInputs): Promise<CheckResult[]> {
  const { result, found } = checkApiserver(inputs);
  return [
    result,
    checkPolicy(inputs, found),
    checkLogDir(inputs, found),
    ...(await checkAgent(inputs)),
    ...(await checkWebhooks(inputs, found)),
    checkDisk(inputs),
  ];
}
