/**
 * Where each forwarder is in the store: one JSON file in the agent's run_path, next to the file
 * checkpoints and kept the same way (replaced by an atomic rename, its shape checked on load), so
 * that a restarted agent resumes every sink where it stopped, from the store.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { SerialFileWriter } from '../collect/checkpoint-registry.js';
import { UserError } from '../model/errors.js';
import { decodeIngestCursor } from '../store/query.js';

export const FORWARD_CURSORS_FILE = 'forward-cursors.json';

const position = z.string().refine(
  (s) => {
    try {
      decodeIngestCursor(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a store position' },
);

const fileSchema = z
  .object({
    version: z.literal(1),
    sinks: z.record(z.string(), z.object({ position, cluster: z.string(), updatedAt: z.string() }).strict()),
  })
  .strict();

type CursorFile = z.output<typeof fileSchema>;

export class ForwardCursors {
  private readonly file: SerialFileWriter;

  private constructor(
    readonly path: string,
    private readonly data: CursorFile,
  ) {
    this.file = new SerialFileWriter(path);
  }

  /** The cursors of a run_path (none when the file does not exist yet); a damaged file is a UserError. */
  static open(runPath: string): ForwardCursors {
    const path = join(runPath, FORWARD_CURSORS_FILE);
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return new ForwardCursors(path, { version: 1, sinks: {} });
    const hint =
      'it is only ever replaced atomically; move it aside to start every sink afresh from the newest stored events (then `kaudit forward --since` sends what they missed)';
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new UserError('KAUDIT_CHECKPOINT_CORRUPT', `forwarder cursor file ${path} is not valid JSON`, {
        cause,
        hint,
      });
    }
    const r = fileSchema.safeParse(parsed);
    if (!r.success) {
      const problems = r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
      throw new UserError(
        'KAUDIT_CHECKPOINT_CORRUPT',
        `forwarder cursor file ${path} has an unknown layout: ${problems.join('; ')}`,
        { hint },
      );
    }
    return new ForwardCursors(path, r.data);
  }

  /** The sink's position, when it has one for this cluster. */
  get(sink: string, cluster: string): string | undefined {
    const c = this.data.sinks[sink];
    return c !== undefined && c.cluster === cluster ? c.position : undefined;
  }

  set(sink: string, cluster: string, position: string): void {
    if (this.data.sinks[sink]?.position === position) return;
    this.data.sinks[sink] = { position, cluster, updatedAt: new Date().toISOString() };
    this.file.dirty = true;
  }

  /** Writes the file if anything changed; writes run one at a time. */
  async commit(): Promise<void> {
    await this.file.commit(() => `${JSON.stringify(this.data, null, 2)}\n`);
  }
}
