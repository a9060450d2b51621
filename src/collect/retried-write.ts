/**
 * A file that must exist while the agent runs (agent.json, where the CLI finds the agent and its
 * token), written again with backoff until a write succeeds. A write can fail for a while without
 * anything being wrong with the file: with descriptors exhausted (EMFILE, every followed file holds
 * one) the temporary file cannot be opened. The agent keeps collecting meanwhile; the first
 * failure is logged with the file and the descriptor limit, never thrown.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './checkpoint-registry.js';
import { type Clock, type ClockTimer, systemClock } from './clock.js';
import type { Logger } from './logger.js';
import { type OpenFile, openFile } from './open-file.js';

const FIRST_RETRY_MS = 200;
const MAX_RETRY_MS = 10_000;

/**
 * The soft limit on open files (`ulimit -n`), read from /proc when the process starts (reading it
 * once descriptors are exhausted would need one); null where /proc is not there.
 */
export const OPEN_FILE_LIMIT: number | null = (() => {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m?.[1] === undefined ? null : Number(m[1]);
  } catch {
    return null;
  }
})();

export interface RetriedWriteOptions {
  path: string;
  text: string;
  mode: number;
  log: Logger;
  open?: OpenFile;
  clock?: Clock;
}

export class RetriedWrite {
  /** Resolves when the file is written (never rejects). */
  readonly written: Promise<void>;
  /** The last failure while the file is not written. */
  lastError: string | undefined;
  private timer: ClockTimer | undefined;
  private cancelled = false;
  private attempt: Promise<boolean> = Promise.resolve(false);
  private readonly clock: Clock;
  private resolveWritten: () => void = () => undefined;

  constructor(private readonly opts: RetriedWriteOptions) {
    this.clock = opts.clock ?? systemClock;
    this.written = new Promise((resolve) => {
      this.resolveWritten = resolve;
    });
  }

  /** Writes once; on failure logs and goes on trying in the background. Resolves true when written now. */
  start(): Promise<boolean> {
    return this.tryWrite(FIRST_RETRY_MS);
  }

  /** No more attempts; resolves once one in progress has ended, so the file can be removed after. */
  async cancel(): Promise<void> {
    this.cancelled = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    await this.attempt;
  }

  private tryWrite(nextMs: number): Promise<boolean> {
    this.attempt = writeFileAtomic(
      this.opts.path,
      this.opts.text,
      this.opts.mode,
      this.opts.open ?? openFile,
    ).then(
      () => {
        if (this.lastError !== undefined) this.opts.log.info('file written', { file: this.opts.path });
        this.lastError = undefined;
        this.resolveWritten();
        return true;
      },
      (err: unknown) => {
        const first = this.lastError === undefined;
        const code = (err as { code?: unknown }).code;
        this.lastError = err instanceof Error ? err.message : String(err);
        if (first)
          this.opts.log.warn('cannot write file; retrying', {
            file: this.opts.path,
            error: this.lastError,
            ...(code === 'EMFILE' || code === 'ENFILE'
              ? {
                  hint: `file descriptors exhausted${OPEN_FILE_LIMIT === null ? '' : ` (limit ${OPEN_FILE_LIMIT})`}: raise the limit (ulimit -n, LimitNOFILE=) or follow fewer files`,
                }
              : {}),
          });
        if (!this.cancelled)
          this.timer = this.clock.setTimeout(
            () => void this.tryWrite(Math.min(nextMs * 2, MAX_RETRY_MS)),
            nextMs,
          );
        return false;
      },
    );
    return this.attempt;
  }
}
