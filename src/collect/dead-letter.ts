/**
 * Malformed input is never dropped in silence: each record goes, with its source and byte offset,
 * to `dead-letter.ndjson` in the data directory, where `kaudit` users can inspect and replay it.
 */
import { isUtf8 } from 'node:buffer';
import { mkdirSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditEvent } from '../model/event.js';
import {
  isRecord,
  jsonDepthExceeds,
  parseJsonKeepingNumbers,
  stringifyKeepingNumbers,
} from '../model/json.js';
import { redactEvent } from '../model/redact.js';
import { type OpenFile, openFile } from './open-file.js';

export const DEAD_LETTER_FILE = 'dead-letter.ndjson';
/** A dead-lettered record keeps at most this much of the original bytes (the rest is counted). */
export const DEAD_LETTER_MAX_DATA = 64 * 1024;

export interface DeadLetterEntry {
  source: string;
  offset?: number;
  reason: string;
  data: Buffer | string;
}

/**
 * A record that parses as JSON is redacted as stored events are (Secret data, tokens, credentials in
 * URIs), whatever made it malformed: the dead letter is no way around redaction. Records that are
 * not JSON (or whose head was cut) are kept as they came.
 */
function redacted(data: Buffer): Buffer {
  if (data.length === 0 || data.length > DEAD_LETTER_MAX_DATA) return data;
  const first = data[0];
  if (first !== 0x7b && first !== 0x5b) return data;
  let value: unknown;
  try {
    value = parseJsonKeepingNumbers(data.toString('utf8'));
  } catch {
    return data;
  }
  if (jsonDepthExceeds(value)) return data;
  let changed = false;
  const visit = (v: unknown, lists: number): void => {
    if (Array.isArray(v)) {
      if (lists < 4) for (const x of v) visit(x, lists + 1);
      return;
    }
    if (!isRecord(v)) return;
    if (v.kind === 'EventList' && Array.isArray(v.items)) visit(v.items, lists + 1);
    else changed = redactEvent(v as unknown as AuditEvent) || changed;
  };
  visit(value, 0);
  return changed ? Buffer.from(stringifyKeepingNumbers(value)) : data;
}

export class DeadLetter {
  readonly path: string;
  count = 0;
  private fh: FileHandle | null = null;
  private chain: Promise<void> = Promise.resolve();

  private readonly open: OpenFile;

  constructor(dataDir: string, opts: { openFile?: OpenFile } = {}) {
    this.open = opts.openFile ?? openFile;
    mkdirSync(dataDir, { recursive: true });
    this.path = join(dataDir, DEAD_LETTER_FILE);
  }

  add(entry: DeadLetterEntry): Promise<void> {
    this.count++;
    const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : entry.data;
    const head = redacted(data.subarray(0, DEAD_LETTER_MAX_DATA));
    // Bytes that are not UTF-8 (or a head cut inside a character) would be mangled by a JSON
    // string: those are kept exact, in base64.
    const text = isUtf8(head);
    const record = {
      time: new Date().toISOString(),
      source: entry.source,
      ...(entry.offset === undefined ? {} : { offset: entry.offset }),
      reason: entry.reason,
      bytes: data.length,
      ...(data.length > DEAD_LETTER_MAX_DATA ? { dataTruncated: true } : {}),
      ...(text ? { data: head.toString('utf8') } : { dataBase64: head.toString('base64') }),
    };
    const line = `${JSON.stringify(record)}\n`;
    // The chain continues after a failed write (a full disk, a directory in the way): each add
    // reports its own failure and the next one tries afresh, with a new handle.
    const write = this.chain
      .catch(() => undefined)
      .then(async () => {
        try {
          this.fh ??= await this.open(this.path, 'a', 0o600);
          await this.fh.write(line);
        } catch (err) {
          const fh = this.fh;
          this.fh = null;
          await fh?.close().catch(() => undefined);
          throw err;
        }
      });
    this.chain = write;
    return write;
  }

  /** Flushes to disk; call before acknowledging the input the entries came from. */
  async sync(): Promise<void> {
    await this.chain;
    await this.fh?.sync();
  }

  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = null;
  }
}
