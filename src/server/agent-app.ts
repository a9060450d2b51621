import type { AgentStatus } from '../collect/agent.js';
import { formatMetrics } from '../collect/metrics.js';
import type { Store } from '../store/contract.js';
import { createApp, type RouteHandler } from './app.js';
import type { TokenAuth } from './auth.js';
import { formatSinkMetrics } from './sink-metrics.js';

export interface AgentAppOptions {
  status: () => Promise<AgentStatus>;
  store: Store;
  auth: TokenAuth;
  dataDir: string;
  /** The store API the CLI uses while the agent holds the store (store/remote). */
  storeApi: RouteHandler;
}

/**
 * The agent's HTTP: the shared app with the agent's health (sources and store), its Prometheus
 * metrics and status, and the store API, all behind the agent's token.
 */
export function agentApp(opts: AgentAppOptions) {
  return createApp({
    store: opts.store,
    auth: opts.auth,
    dataDir: opts.dataDir,
    status: opts.status,
    health: async () => {
      const s = await opts.status();
      const failing = [s.store, ...s.logs].filter((x) => x.status !== 'OK');
      return failing.length === 0 ? null : failing.map((x) => x.error ?? 'error');
    },
    metrics: async () => {
      const s = await opts.status();
      return formatMetrics(s) + formatSinkMetrics(s as Parameters<typeof formatSinkMetrics>[0]);
    },
    routes: [{ prefix: '/api/v1/store/', handler: opts.storeApi, level: 'read' }],
    // kaudit ingest sends whole store batches through the store API while the agent holds the store.
    maxBodyBytes: 512 << 20,
  });
}
