/**
 * One-shot ingest of files, directories and stdin into a Store: frame -> prepare -> batch ->
 * store, with one batch being stored while the next is prepared. Malformed records and events
 * the store rejects are dead-lettered with their source and byte offset; nothing is dropped silently.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { UserError } from '../model/errors.js';
import { type FrameRecord, frameInput } from '../model/frame.js';
import {
  DEFAULT_PREPARE_OPTIONS,
  type PreparedLine,
  type PrepareOptions,
  prepareLine,
  prepareValue,
  trimLine,
} from '../model/prepare.js';
import { RestageError, type Store, type WriteResult, writeOnce } from '../store/store.js';
import type { DeadLetter } from './dead-letter.js';

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
  prepare?: PrepareOptions;
  /** A store batch holds at most this many events (default: the store's batchEvents)... */
  batchEvents?: number;
  /** ...and this many bytes. */
  batchBytes?: number;
  /** Batches handed to the store and not yet stored; default 4. */
  batchesInFlight?: number;
  onProgress?: (p: IngestProgress) => void;
}

export interface IngestSummary {
  files: number;
  bytes: number;
  events: number;
  stored: number;
  duplicates: number;
  truncated: number;
  malformed: number;
  deadLetter: string;
  seconds: number;
  eventsPerSecond: number;
}

const DEFAULT_BATCH_BYTES = 256 << 20;
/** Times a batch may be staged again when the store asks (see flush). */
const MAX_RESTAGES = 1000;
// Two importing, the rest staged and waiting, so an import never waits for the parse loop.
const DEFAULT_BATCHES_IN_FLIGHT = 4;

/** Expands directories (recursively, sorted by name) into the files to read. */
export async function expandInputs(
  paths: readonly string[],
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
      throw new UserError(
        'KAUDIT_INPUT_NOT_FOUND',
        `cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
    if (st.isDirectory()) {
      // Hidden files and the simulator's ground-truth files are not audit logs.
      const names = (await readdir(p)).filter((n) => !n.startsWith('.') && !n.endsWith('.truth.json')).sort();
      out.push(...(await expandInputs(names.map((n) => join(p, n)))));
    } else if (st.isFile()) {
      out.push({ path: p, size: st.size });
    }
  }
  return out;
}

interface Pending {
  events: Buffer[];
  sources: string[];
  offsets: number[];
  bytes: number;
}

function newPending(): Pending {
  return { events: [], sources: [], offsets: [], bytes: 0 };
}

/** A framed record (not one of the plain lines framing marked) as prepared events. */
function prepareRecord(rec: FrameRecord, prep: PrepareOptions): PreparedLine {
  if (rec.kind === 'line') return prepareLine(rec.data, prep);
  try {
    return prepareValue(JSON.parse(trimLine(rec.data).toString('utf8')), prep);
  } catch (err) {
    return { events: [], truncated: 0, malformed: `not JSON: ${(err as Error).message}` };
  }
}

export async function ingest(inputs: readonly IngestInput[], opts: IngestOptions): Promise<IngestSummary> {
  const started = performance.now();
  const prep = opts.prepare ?? DEFAULT_PREPARE_OPTIONS;
  const batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
  // The store's cheapest batch (for DuckDB, one row group, written compressed without the WAL).
  const batchEvents = opts.batchEvents ?? opts.store.capabilities.batchEvents;
  const files = await expandInputs(inputs.map((i) => i.path));
  const bytesTotal = files.some((f) => f.size === null) ? null : files.reduce((a, f) => a + (f.size ?? 0), 0);
  const s = { events: 0, stored: 0, duplicates: 0, truncated: 0, malformed: 0 };
  let bytesDone = 0;
  const maxInFlight = Math.max(1, opts.batchesInFlight ?? DEFAULT_BATCHES_IN_FLIGHT);
  const inFlight: Promise<void>[] = [];
  let failure: unknown = null;
  let stopped = false;
  let pending = newPending();

  // Only sources and offsets outlive the store call: the store returns rejected events' bytes.
  const settle = (batch: Pick<Pending, 'sources' | 'offsets'>, r: WriteResult) => {
    s.stored += r.stored;
    s.duplicates += r.duplicates;
    for (const rej of r.rejected) {
      s.malformed++;
      s.events--;
      void opts.deadLetter.add({
        source: batch.sources[rej.index] ?? '?',
        offset: batch.offsets[rej.index] ?? 0,
        reason: rej.reason,
        data: rej.data,
      });
    }
  };

  const add = (ev: Buffer, source: string, offset: number) => {
    pending.events.push(ev);
    pending.sources.push(source);
    pending.offsets.push(offset);
    pending.bytes += ev.length;
    s.events++;
  };

  const flush = async () => {
    if (pending.events.length === 0) return;
    const { sources, offsets } = pending;
    // Kept only while the store may ask for the batch to be staged again (copies it counted as
    // duplicates were not stored after all); a batch before it that failed has failed the ingest.
    let events: Buffer[] | null = pending.events;
    pending = newPending();
    // Hand the batch over before waiting for the oldest in flight: the store stages it meanwhile.
    const write = async (): Promise<WriteResult> => {
      for (let attempt = 1; ; attempt++) {
        if (events === null) throw new Error('internal: a batch staged again after its events were let go');
        const staged = opts.store.stage({ events, cluster: opts.cluster });
        if (staged.selfContained) events = null;
        try {
          return await writeOnce(staged);
        } catch (err) {
          // Nothing failed: another batch rejected or let go copies this one counted on. Each time,
          // a batch before it has settled, so this ends; the cap is only a guard.
          const again = err instanceof RestageError && events !== null && failure === null && !stopped;
          if (!again || attempt >= MAX_RESTAGES) throw err;
        }
      }
    };
    inFlight.push(
      write().then(
        (r) => settle({ sources, offsets }, r),
        (err: unknown) => {
          failure ??= err;
        },
      ),
    );
    if (inFlight.length >= maxInFlight) await inFlight.shift();
    if (failure) throw failure;
  };

  try {
    await readAll();
  } catch (err) {
    // No batch may still be written (or staged again) once the caller closes the store.
    stopped = true;
    await Promise.all(inFlight);
    throw err;
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  await opts.deadLetter.sync();
  const seconds = (performance.now() - started) / 1000;
  return {
    files: files.length,
    bytes: bytesDone,
    ...s,
    deadLetter: opts.deadLetter.path,
    seconds: Math.round(seconds * 1000) / 1000,
    eventsPerSecond: Math.round(s.events / Math.max(seconds, 1e-9)),
  };

  async function readAll(): Promise<void> {
    for (const file of files) {
      const stream = file.path === '-' ? inputs.find((i) => i.path === '-')?.stream : undefined;
      const source = file.path === '-' ? '<stdin>' : file.path;
      const base = bytesDone;
      for await (const records of frameInput(stream ?? file.path, {
        onBytes: (n) => {
          bytesDone = base + n;
        },
        prepare: prep,
      })) {
        for (const rec of records) {
          if (rec.kind === 'line' && rec.plain) add(rec.data, source, rec.offset);
          else {
            const prepared = prepareRecord(rec, prep);
            if (prepared.malformed !== undefined) {
              s.malformed++;
              void opts.deadLetter.add({
                source,
                offset: rec.offset,
                reason: prepared.malformed,
                data: rec.data,
              });
              continue;
            }
            s.truncated += prepared.truncated;
            for (const ev of prepared.events) add(ev, source, rec.offset);
          }
          if (pending.bytes >= batchBytes || pending.events.length >= batchEvents) await flush();
        }
        // Let the store's completions run: reads of a cached file may never leave the event loop idle.
        await setImmediate();
        opts.onProgress?.({
          bytesRead: bytesDone,
          bytesTotal,
          events: s.events,
          stored: s.stored,
          elapsedMs: performance.now() - started,
        });
      }
    }
    await flush();
  }
}
