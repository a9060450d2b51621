import type { AuditEvent } from '../model/event.js';
import type { EventReader } from '../store/contract.js';
import type { EventFilter } from '../store/query.js';
import { storedEvents } from '../store/stored-events.js';
import type { LoggedAlert } from './alert-log.js';

/** Runs rules over events: the compiled engine. */
export interface EventDetector {
  process(event: AuditEvent, meta: { cluster: string }): LoggedAlert[];
}

export interface BacktestResult {
  events: number;
  alerts: LoggedAlert[];
}

/**
 * Runs the rules over stored history, oldest first, exactly as the agent runs them live (windows of
 * stateful rules follow the events' own timestamps), on any backend and while the agent holds the
 * store.
 */
export async function backtest(
  reader: EventReader,
  filter: EventFilter,
  detector: EventDetector,
  onProgress?: (events: number) => void,
): Promise<BacktestResult> {
  const alerts: LoggedAlert[] = [];
  let events = 0;
  for await (const { event, cluster } of storedEvents(reader, filter)) {
    events++;
    for (const a of detector.process(event, { cluster })) alerts.push(a);
    if (onProgress !== undefined && events % 50_000 === 0) onProgress(events);
  }
  return { events, alerts };
}
