import type { AlertLog, LoggedAlert } from '../detect/alert-log.js';
import type { AuditEvent } from '../model/event.js';
import type { Logger } from './logger.js';
import type { Sink, StoredBatch } from './sinks.js';

/** What runs the rules: the compiled detection engine (src/detect). */
export interface Detector {
  process(event: AuditEvent, meta: { cluster: string }): LoggedAlert[];
}

/** Where new alerts go besides the alert log: stdout, a file, a webhook, Slack (src/detect/outputs). */
export interface AlertOutput {
  readonly name: string;
  send(alerts: readonly LoggedAlert[]): Promise<void>;
}

export interface DetectionStats {
  events: number;
  alerts: number;
  outputErrors: number;
}

/**
 * Live detection in the agent: a sink, so it sees each event once and only after the store has it
 * (an alert always points at a stored event). New alerts are recorded in the alert log (once per
 * rule and event, so a restart re-reading a file raises nothing twice) and then sent to the outputs.
 */
export class DetectionSink implements Sink {
  readonly name = 'detections';
  private readonly counters: DetectionStats = { events: 0, alerts: 0, outputErrors: 0 };

  constructor(
    private readonly detector: Detector,
    private readonly alerts: AlertLog,
    private readonly outputs: readonly AlertOutput[],
    private readonly log: Logger,
  ) {}

  async export(batch: StoredBatch): Promise<void> {
    const raised: LoggedAlert[] = [];
    for (const buf of batch.events) {
      let event: AuditEvent;
      try {
        event = JSON.parse(buf.toString('utf8')) as AuditEvent;
      } catch {
        continue; // the store validated it; nothing to detect in what is not JSON
      }
      this.counters.events++;
      for (const a of this.detector.process(event, { cluster: batch.cluster })) raised.push(a);
    }
    if (raised.length === 0) return;
    const fresh = await this.alerts.append(raised);
    this.counters.alerts += fresh.length;
    for (const out of this.outputs) {
      try {
        await out.send(fresh);
      } catch (err) {
        this.counters.outputErrors++;
        this.log.error('alert output failed', {
          output: out.name,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  async shutdown(): Promise<void> {}

  stats(): DetectionStats {
    return { ...this.counters };
  }
}
