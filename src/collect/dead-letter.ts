/**
 * Malformed input is never dropped in silence: each record goes, with its source and byte offset,
 * to `dead-letter.ndjson` in the data directory, where `kaudit` users can inspect and replay it.
 */
import { mkdirSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';

export const DEAD_LETTER_FILE = 'dead-letter.ndjson';
/** A dead-lettered record keeps at most this much of the original bytes (the rest is counted). */
export const DEAD_LETTER_MAX_DATA = 64 * 1024;

export interface DeadLetterEntry {
  source: string;
  offset?: number;
  reason: string;
  data: Buffer | string;
}

export class DeadLetter {
  readonly path: string;
  count = 0;
  private fh: FileHandle | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.path = join(dataDir, DEAD_LETTER_FILE);
  }

  add(entry: DeadLetterEntry): Promise<void> {
    this.count++;
    const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : entry.data;
    const kept = data.subarray(0, DEAD_LETTER_MAX_DATA).toString('utf8');
    const record = {
      time: new Date().toISOString(),
      source: entry.source,
      ...(entry.offset === undefined ? {} : { offset: entry.offset }),
      reason: entry.reason,
      bytes: data.length,
      ...(data.length > DEAD_LETTER_MAX_DATA ? { dataTruncated: true } : {}),
      data: kept,
    };
    const line = `${JSON.stringify(record)}\n`;
    this.chain = this.chain.then(async () => {
      this.fh ??= await open(this.path, 'a');
      await this.fh.write(line);
    });
    return this.chain;
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
