import { join } from 'node:path';
import type { AgentConfig } from '../../collect/agent-config.js';
import { DetectionSink, type DetectionStats } from '../../collect/detection-sink.js';
import type { Logger } from '../../collect/logger.js';
import { ALERT_FILE, AlertLog } from '../../detect/alert-log.js';
import { DetectionEngine } from '../../detect/engine.js';
import { loadRuleSet } from '../../detect/rule-set.js';
import {
  type AlertOutputConfig,
  type AlertOutputStats,
  createAlertOutputs,
  type RunningAlertOutput,
} from '../../forward/alert-outputs.js';
import { readSecret } from '../../forward/sink-types.js';
import { formatDiagnostic, UserError } from '../../model/errors.js';

export interface AgentDetection {
  sink: DetectionSink;
  rules: number;
  stats(): DetectionStats & { rules: number; outputs: AlertOutputStats[] };
  close(): Promise<void>;
}

/**
 * Live detection for the agent: the rules of `detect:` compiled once, run as a sink after the
 * store, alerts recorded in DATA/alerts.ndjson and sent to the configured outputs. A rule file
 * with a problem stops the agent from starting, naming the file and line.
 */
export async function startDetection(
  config: AgentConfig,
  log: Logger,
  env: NodeJS.ProcessEnv,
  pathOf: (p: string) => string,
): Promise<AgentDetection | undefined> {
  const d = config.detect;
  if (d === undefined) return undefined;
  const set = loadRuleSet({
    builtin: d.builtin,
    rules: d.rules.map(pathOf),
    sigma: d.sigma.map(pathOf),
    disabled: d.disable,
  });
  const errors = set.diagnostics.filter((x) => x.severity === 'error');
  for (const w of set.diagnostics.filter((x) => x.severity !== 'error')) log.warn(formatDiagnostic(w));
  if (errors.length > 0)
    throw new UserError(
      'KAUDIT_RULE_INVALID',
      `detect: the rules do not load:\n${errors.map(formatDiagnostic).join('\n')}`,
    );
  const engine = new DetectionEngine(set.rules, { allow: d.allow ?? {} });
  const alerts = await AlertLog.open(config.dataDir);
  const outputs: RunningAlertOutput[] = createAlertOutputs(
    d.outputs.map((o): AlertOutputConfig => {
      if (o.type === 'webhook')
        return {
          type: 'webhook',
          url: o.url,
          ...(o.token === undefined
            ? {}
            : { token: readSecret(o.token, 'detect.outputs webhook token', { env, pathOf }) }),
        };
      if (o.type === 'slack')
        return { type: 'slack', url: readSecret(o.url, 'detect.outputs slack url', { env, pathOf }) };
      if (o.type === 'file') return { type: 'file', path: pathOf(o.path) };
      return o;
    }),
    {
      alertLogPath: join(config.dataDir, ALERT_FILE),
      dataDir: config.dataDir,
      log,
      maxPerRulePerMinute: d.max_alerts_per_rule_per_minute,
    },
  );
  const sink = new DetectionSink(engine, alerts, outputs, log);
  log.info('detection on', { rules: set.rules.length, outputs: outputs.map((o) => o.name).join(',') });
  return {
    sink,
    rules: set.rules.length,
    stats: () => ({ ...sink.stats(), rules: set.rules.length, outputs: outputs.map((o) => o.stats()) }),
    close: async () => {
      for (const o of outputs) await o.close();
    },
  };
}
