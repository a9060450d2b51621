import { describe, expect, it } from 'vitest';
import { parseAgentConfig, parseListen } from './agent-config.js';
import { defaultWebhookLimits } from './config/source-config.js';

const GOOD = `cluster: prod-eu-1
run_path: /var/lib/kaudit/run
data: /var/lib/kaudit/data
logs:
  - type: file
    path: /var/log/kubernetes/apiserver/audit.log
    source: kubernetes.audit
    service: audit
  - type: webhook
    listen: 0.0.0.0:8443
    path: /audit
    token_file: /etc/kaudit/token
`;

describe('parseAgentConfig', () => {
  it('reads the Datadog-shaped config with defaults', () => {
    const { config, diagnostics } = parseAgentConfig(GOOD, { file: 'kaudit.yaml' });
    expect(diagnostics).toEqual([]);
    expect(config).toMatchObject({
      cluster: 'prod-eu-1',
      runPath: '/var/lib/kaudit/run',
      dataDir: '/var/lib/kaudit/data',
      logsEnabled: true,
      admin: { host: '127.0.0.1', port: 5599 },
      maxEventBytes: 4 * 1024 * 1024,
    });
    expect(config?.logs[0]).toMatchObject({ type: 'file', startPosition: 'beginning', service: 'audit' });
    expect(config?.logs[1]).toMatchObject({
      type: 'webhook',
      listen: { host: '0.0.0.0', port: 8443 },
      tokenFile: '/etc/kaudit/token',
      maxBodyBytes: 12 * 1024 * 1024,
    });
  });

  it('reports every problem at once, each with its line and field', () => {
    const text = `cluster: x
run_path: /r
data: /d
colour: blue
logs:
  - type: file
    start_position: middle
  - type: webhook
    listen: nowhere
  - type: syslog
  - type: webhook
    listen: 0.0.0.0:9000
`;
    const { config, diagnostics } = parseAgentConfig(text, { file: 'k.yaml' });
    expect(config).toBeUndefined();
    const got = diagnostics.map((d) => `${d.line}:${d.path}`);
    expect(got).toEqual([
      '4:colour',
      '6:logs[0].path',
      '7:logs[0].start_position',
      '9:logs[1].listen',
      '10:logs[2].type',
      '11:logs[3]',
    ]);
    expect(diagnostics.every((d) => d.file === 'k.yaml')).toBe(true);
    expect(diagnostics[5]?.message).toMatch(/needs tls.client_ca or token_file/);
  });

  it("gives the webhook's client limits defaults, takes them from the config and checks them with line and field", () => {
    // Unset, they are the defaults the receiver takes for the source's max_body_bytes.
    const { config } = parseAgentConfig(GOOD, { file: 'kaudit.yaml' });
    expect(config?.logs[1]).not.toHaveProperty('limits');
    expect(defaultWebhookLimits(12 * 1024 * 1024)).toEqual({
      maxConnections: 256,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      bodyIdleMs: 10_000,
      stopGraceMs: 10_000,
      maxBufferedBytes: 8 * 12 * 1024 * 1024,
      maxDecompressedBytes: 12 * 1024 * 1024,
    });
    const set = parseAgentConfig(
      `cluster: x
run_path: /r
data: /d
logs:
  - type: webhook
    listen: 127.0.0.1:9000
    max_body_bytes: 1048576
    max_decompressed_bytes: 4194304
    max_buffered_bytes: 16777216
    max_connections: 32
    headers_timeout_ms: 2000
    request_timeout_ms: 30000
    body_idle_timeout_ms: 5000
    stop_grace_ms: 1000
`,
      { file: 'k.yaml' },
    );
    expect(set.diagnostics).toEqual([]);
    expect(set.config?.logs[0]).toMatchObject({
      maxBodyBytes: 1048576,
      limits: {
        maxConnections: 32,
        headersTimeoutMs: 2000,
        requestTimeoutMs: 30000,
        bodyIdleMs: 5000,
        stopGraceMs: 1000,
        maxBufferedBytes: 16777216,
        maxDecompressedBytes: 4194304,
      },
    });
    const bad = parseAgentConfig(
      `cluster: x
run_path: /r
data: /d
logs:
  - type: webhook
    listen: 127.0.0.1:9000
    max_connections: 0
    headers_timeout_ms: 20000
    request_timeout_ms: 10000
    max_buffered_bytes: 2048
  - type: webhook
    listen: 127.0.0.1:9001
    body_idle_timeout_ms: fast
    max_decompressed_bytes: 1.5
`,
      { file: 'k.yaml' },
    );
    expect(bad.config).toBeUndefined();
    expect(bad.diagnostics.map((d) => `${d.file}:${d.line}:${d.path}: ${d.message}`)).toEqual([
      'k.yaml:7:logs[0].max_connections: must be >= 1, got 0',
      'k.yaml:9:logs[0].request_timeout_ms: must be at least headers_timeout_ms',
      'k.yaml:10:logs[0].max_buffered_bytes: must be at least max_body_bytes, or no body could be received',
      'k.yaml:13:logs[1].body_idle_timeout_ms: must be a number, got "fast"',
      'k.yaml:14:logs[1].max_decompressed_bytes: must be a whole number, got 1.5',
    ]);
  });

  it('lets KAUDIT_* variables override, and KAUDIT_LOGS_ENABLED=false turn collection off', () => {
    const { config } = parseAgentConfig(GOOD, {
      env: {
        KAUDIT_CLUSTER: 'staging',
        KAUDIT_DATA: '/tmp/d',
        KAUDIT_ADMIN_LISTEN: '127.0.0.1:0',
        KAUDIT_LOGS_ENABLED: 'false',
        KAUDIT_MAX_EVENT_BYTES: '65536',
      },
    });
    expect(config).toMatchObject({
      cluster: 'staging',
      dataDir: '/tmp/d',
      admin: { host: '127.0.0.1', port: 0 },
      logsEnabled: false,
      maxEventBytes: 65536,
    });
  });

  it('takes store_trim_memory from the file or KAUDIT_STORE_TRIM_MEMORY, off by default', () => {
    expect(parseAgentConfig(GOOD).config?.storeTrimMemory).toBe(false);
    expect(parseAgentConfig(`${GOOD}store_trim_memory: true\n`).config?.storeTrimMemory).toBe(true);
    expect(
      parseAgentConfig(GOOD, { env: { KAUDIT_STORE_TRIM_MEMORY: 'true' } }).config?.storeTrimMemory,
    ).toBe(true);
    const bad = parseAgentConfig(`${GOOD}store_trim_memory: sometimes\n`);
    expect(bad.diagnostics.map((d) => d.path)).toEqual(['store_trim_memory']);
  });

  it('takes the store memory limit from the file or KAUDIT_STORE_MEMORY_LIMIT and checks it is a size', () => {
    expect(parseAgentConfig(`${GOOD}store_memory_limit: 512MB\n`).config?.storeMemoryLimit).toBe('512MB');
    expect(
      parseAgentConfig(GOOD, { env: { KAUDIT_STORE_MEMORY_LIMIT: '2GB' } }).config?.storeMemoryLimit,
    ).toBe('2GB');
    const bad = parseAgentConfig(`${GOOD}store_memory_limit: lots\n`);
    expect(bad.diagnostics.map((d) => `${d.line}:${d.path}`)).toEqual(['13:store_memory_limit']);
  });

  it('reports a bad environment value by its name', () => {
    const { diagnostics } = parseAgentConfig(GOOD, { env: { KAUDIT_LOGS_ENABLED: 'perhaps' } });
    expect(diagnostics.map((d) => d.message)).toEqual([
      'KAUDIT_LOGS_ENABLED: must be true or false, got "perhaps"',
    ]);
  });

  it('requires run_path and data unless the environment gives them', () => {
    expect(parseAgentConfig('logs: []\n').diagnostics.map((d) => d.path)).toEqual(['run_path', 'data']);
    expect(
      parseAgentConfig('logs: []\n', { env: { KAUDIT_RUN_PATH: '/r', KAUDIT_DATA: '/d' } }).diagnostics,
    ).toEqual([]);
  });

  it('resolves relative paths against the config file', () => {
    const { config } = parseAgentConfig(
      'run_path: run\ndata: data\nlogs: [{type: file, path: logs/*.log}]\n',
      {
        file: '/etc/kaudit/kaudit.yaml',
      },
    );
    expect(config?.runPath).toBe('/etc/kaudit/run');
    expect(config?.logs[0]).toMatchObject({ path: '/etc/kaudit/logs/*.log' });
  });

  it('parses listen addresses', () => {
    expect(parseListen('0.0.0.0:8443')).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(parseListen(':8443')).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(parseListen('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(parseListen('8443')).toBeUndefined();
    expect(parseListen('h:99999')).toBeUndefined();
  });
});

describe('forward: and detect: sections', () => {
  it('checks each forward entry with the schema the caller gives, naming the line and field', async () => {
    const { forwardSchema } = await import('../forward/sink-types.js');
    const text = `${GOOD}forward:
  - type: datadog
    api_key: {env: DD_API_KEY}
  - type: datadgo
  - type: loki
    url: not a url
`;
    const { config, diagnostics } = parseAgentConfig(text, { forwardSchema });
    expect(config).toBeUndefined();
    expect(diagnostics.map((d) => `${d.line}:${d.path}`)).toEqual([
      '16:forward[1].type',
      '18:forward[2].url',
    ]);
    const ok = parseAgentConfig(`${GOOD}forward:\n  - type: http\n    url: http://127.0.0.1:9/x\n`, {
      forwardSchema,
    });
    expect(ok.diagnostics).toEqual([]);
    expect(ok.config?.forward).toEqual([{ type: 'http', url: 'http://127.0.0.1:9/x' }]);
  });

  it('turns detection on with the built-in pack unless told otherwise', () => {
    const on = parseAgentConfig(`${GOOD}detect:\n  allow: {namespaces: [ci]}\n`);
    expect(on.config?.detect).toMatchObject({ builtin: true, allow: { namespaces: ['ci'] } });
    expect(parseAgentConfig(`${GOOD}detect: {enabled: false}\n`).config?.detect).toBeUndefined();
    const bad = parseAgentConfig(`${GOOD}detect:\n  outputs: [{type: pager}]\n`);
    expect(bad.diagnostics.map((d) => d.path)).toEqual(['detect.outputs[0].type']);
  });
});
