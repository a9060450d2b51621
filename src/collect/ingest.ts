/**
 * One-shot ingest of files, directories and stdin: a source that reads each input once, to its end,
 * into the same Pipeline the agent uses (batching, de-duplication, dead letters and acknowledgement
 * are one code path), then drains it. A path that cannot be read, or a compressed file cut short, is
 * reported and skipped; every good event of the rest is stored.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { type FrameRecord, frameInput, oversizeReason, recordPlace } from '../model/frame.js';
import { parseJsonKeepingNumbers } from '../model/json.js';
import {
  DEFAULT_PREPARE_OPTIONS,
  fastPathUnsafe,
  type PreparedLine,
  type PrepareOptions,
  prepareLine,
  prepareValue,
  trimLine,
} from '../model/prepare.js';
import type { Store } from '../store/contract.js';
import type { DeadLetter } from './dead-letter.js';
import type { Logger } from './logger.js';
import { type DeadLetterEntry, Pipeline, type PipelineItem } from './pipeline.js';
import { FanOut, type Sink } from './sinks.js';

export interface IngestInput {
  /** A file or directory path, or `-` with `stream` for standard input. */
  path: string;
  stream?: Readable;
}

export interface IngestProgress {
  bytesRead: number;
  bytesTotal: number | null;
  /** Events read and prepared so far. */
  events: number;
  /** Events the store has acknowledged. */
  stored: number;
  elapsedMs: number;
}

export interface IngestOptions {
  store: Store;
  cluster: string;
  deadLetter: DeadLetter;
  log: Logger;
  prepare?: PrepareOptions;
  /** Consumers of what the store stored (detections), after the store. */
  sinks?: readonly Sink[];
  /** A store batch holds at most this many events (default: the store's batchEvents). */
  batchEvents?: number;
  onProgress?: (p: IngestProgress) => void;
}

/** An input that was not read whole. */
export interface SkippedInput {
  path: string;
  reason: string;
}

export interface IngestSummary {
  files: number;
  bytes: number;
  events: number;
  stored: number;
  duplicates: number;
  truncated: number;
  malformed: number;
  /**
   * Inputs not read, or not read to their end (their readable events are stored), and inputs
   * whose records are none of them audit events (`/etc/passwd`; the records are dead-lettered).
   */
  skipped: SkippedInput[];
  /** Inputs that held no record at all: empty (a log just rotated), or blank lines only. */
  empty: string[];
  deadLetter: string;
  seconds: number;
  eventsPerSecond: number;
}

/** Events per pipeline item: the pipeline cuts store batches from them. */
const ITEM_EVENTS = 2000;
const QUEUE_BYTES = 512 << 20;

/** Expands directories (recursively, sorted by name) into the files to read; bad paths are reported, not fatal. */
export async function expandInputs(
  paths: readonly string[],
  skipped: SkippedInput[] = [],
): Promise<{ path: string; size: number | null }[]> {
  const out: { path: string; size: number | null }[] = [];
  for (const p of paths) {
    if (p === '-') {
      out.push({ path: '-', size: null });
      continue;
    }
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(p);
    } catch (err) {
      skipped.push({ path: p, reason: errnoText(err) });
      continue;
    }
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = await readdir(p);
      } catch (err) {
        skipped.push({ path: p, reason: errnoText(err) });
        continue;
      }
      // Hidden files and the simulator's ground-truth files are not audit logs.
      const logs = names.filter((n) => !n.startsWith('.') && !n.endsWith('.truth.json')).sort();
      out.push(
        ...(await expandInputs(
          logs.map((n) => join(p, n)),
          skipped,
        )),
      );
    } else if (st.isFile()) {
      out.push({ path: p, size: st.size });
    } else {
      skipped.push({ path: p, reason: 'not a regular file' });
    }
  }
  return out;
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file or directory (or a broken symlink)';
  if (e.code === 'EACCES') return 'permission denied';
  return e.code ?? (err instanceof Error ? err.message : String(err));
}

/** A framed record (not one of the plain lines framing marked) as prepared events. */
function prepareRecord(rec: FrameRecord, prep: PrepareOptions): PreparedLine {
  const oversize = oversizeReason(rec);
  if (oversize !== undefined) return { events: [], truncated: 0, malformed: oversize };
  const p = parseRecord(rec, prep);
  const place = recordPlace(rec);
  if (place === '') return p;
  // An element of a top-level array: its problems name its index.
  if (p.malformed !== undefined) p.malformed = `${place}${p.malformed}`;
  for (const r of p.rejected ?? []) r.reason = `${place}${r.reason}`;
  return p;
}

function parseRecord(rec: FrameRecord, prep: PrepareOptions): PreparedLine {
  if (rec.kind === 'line') return prepareLine(rec.data, prep);
  try {
    return prepareValue(parseJsonKeepingNumbers(trimLine(rec.data).toString('utf8')), prep);
  } catch (err) {
    return { events: [], truncated: 0, malformed: `not JSON: ${(err as Error).message}` };
  }
}

export async function ingest(inputs: readonly IngestInput[], opts: IngestOptions): Promise<IngestSummary> {
  const started = performance.now();
  const prep = opts.prepare ?? DEFAULT_PREPARE_OPTIONS;
  const batchEvents = opts.batchEvents ?? opts.store.capabilities.batchEvents;
  const writesInFlight = opts.store.capabilities.parallelWrites + 1;
  const sinks = new FanOut(opts.sinks ?? [], { log: opts.log });
  const pipeline = new Pipeline({
    store: opts.store,
    cluster: opts.cluster,
    // Room for a batch in each writer and the next one being filled.
    queueEvents: (writesInFlight + 2) * batchEvents,
    queueBytes: QUEUE_BYTES,
    batchEvents,
    flushIntervalMs: 50,
    writesInFlight,
    deadLetter: opts.deadLetter,
    log: opts.log,
    sinks,
  });
  pipeline.start();

  const skipped: SkippedInput[] = [];
  const files = await expandInputs(
    inputs.map((i) => i.path),
    skipped,
  );
  const bytesTotal = files.some((f) => f.size === null) ? null : files.reduce((a, f) => a + (f.size ?? 0), 0);
  const s = { events: 0, truncated: 0, malformed: 0 };
  const empty: string[] = [];
  let bytesDone = 0;
  let failure: Error | undefined;

  const offer = async (item: PipelineItem): Promise<void> => {
    item.done = (err) => {
      failure ??= err;
    };
    await pipeline.offer(item);
    // The store failed: stop reading (what was stored stays stored, the run fails).
    if (failure !== undefined) throw failure;
  };

  try {
    for (const file of files) {
      if (failure !== undefined) break;
      const stream = file.path === '-' ? inputs.find((i) => i.path === '-')?.stream : undefined;
      const source = file.path === '-' ? '<stdin>' : file.path;
      const base = bytesDone;
      const eventsBefore = s.events;
      const malformedBefore = s.malformed;
      const skippedBefore = skipped.length;
      let item = newItem(source);
      try {
        for await (const records of frameInput(stream ?? file.path, {
          onBytes: (n) => {
            bytesDone = base + n;
          },
          prepare: prep,
        })) {
          for (const rec of records) {
            // The scanner vouches for shape, not nesting or years: such lines take the parsing path.
            if (rec.kind === 'line' && rec.plain && rec.oversize === undefined && !fastPathUnsafe(rec.data)) {
              item.events.push(rec.data);
              item.offsets?.push(rec.offset);
              s.events++;
            } else {
              const prepared = prepareRecord(rec, prep);
              if (prepared.malformed !== undefined) {
                s.malformed++;
                item.deadLetters.push(letter(source, rec.offset, prepared.malformed, rec.data));
              }
              for (const r of prepared.rejected ?? []) {
                s.malformed++;
                item.deadLetters.push(letter(source, rec.offset, r.reason, r.data));
              }
              s.truncated += prepared.truncated;
              for (const ev of prepared.events) {
                item.events.push(ev);
                item.offsets?.push(rec.offset);
                s.events++;
              }
            }
            if (item.events.length >= ITEM_EVENTS) {
              await offer(item);
              item = newItem(source);
            }
          }
          // Lets the store's completions run: reads of a cached file may never leave the event loop idle.
          await setImmediate();
          opts.onProgress?.({
            bytesRead: bytesDone,
            bytesTotal,
            events: s.events,
            stored: pipeline.stats().eventsStored,
            elapsedMs: performance.now() - started,
          });
        }
      } catch (err) {
        if (err === failure) break;
        // A truncated .gz, a file that went away or became unreadable: what was read is kept.
        skipped.push({ path: source, reason: `stopped after ${bytesDone - base} bytes: ${errnoText(err)}` });
      }
      if (failure === undefined && (item.events.length > 0 || item.deadLetters.length > 0)) {
        item.more = false;
        await offer(item).catch(() => undefined);
      }
      if (failure === undefined && s.events === eventsBefore) {
        const bad = s.malformed - malformedBefore;
        if (bad > 0)
          skipped.push({
            path: source,
            reason: `not an audit log: ${bad === 1 ? 'its one record is not' : `none of its ${bad} records is`} an audit event (kept in ${opts.deadLetter.path})`,
          });
        else if (skipped.length === skippedBefore) empty.push(source);
      }
    }
  } finally {
    await pipeline.shutdown(failure === undefined ? 60_000 : 0);
    await sinks.shutdown();
  }
  if (failure !== undefined) throw failure;
  await opts.deadLetter.sync();
  const p = pipeline.stats();
  const seconds = (performance.now() - started) / 1000;
  return {
    files: files.length,
    bytes: bytesDone,
    events: s.events - p.rejected,
    stored: p.eventsStored,
    duplicates: p.duplicates,
    truncated: s.truncated,
    malformed: s.malformed + p.rejected,
    skipped,
    empty,
    deadLetter: opts.deadLetter.path,
    seconds: Math.round(seconds * 1000) / 1000,
    eventsPerSecond: Math.round(s.events / Math.max(seconds, 1e-9)),
  };
}

function newItem(source: string): PipelineItem {
  return { source, events: [], offsets: [], deadLetters: [], retry: false, more: true };
}

function letter(source: string, offset: number, reason: string, data: Buffer): DeadLetterEntry {
  return { source, offset, reason, data };
}
