import { z } from 'zod';
import type { FileSourceConfig } from '../config/source-config.js';
import { FileSource } from '../file-source.js';
import type { Source, SourceType } from './source.js';

const schema = z
  .object({
    type: z.literal('file'),
    name: z.string().min(1).optional(),
    path: z.string().min(1),
    source: z.string().min(1).default('kubernetes.audit'),
    service: z.string().min(1).default('audit'),
    start_position: z.enum(['beginning', 'end']).default('beginning'),
  })
  .strict();

/** `type: file`: tails audit.log and its rotated backups, with checkpoints. */
export const fileSourceType: SourceType<z.output<typeof schema>, FileSourceConfig> = {
  type: 'file',
  schema,
  configure(raw, ctx) {
    const path = ctx.pathOf(raw.path);
    return {
      type: 'file',
      name: raw.name ?? path,
      path,
      source: raw.source,
      service: raw.service,
      startPosition: raw.start_position,
    };
  },
  create(config, deps): Source {
    const tailer = new FileSource({
      config,
      registry: deps.registry,
      offer: deps.offer,
      prepare: deps.prepare,
      maxLineBytes: deps.maxLineBytes,
      log: deps.log,
      ...(deps.scanIntervalMs === undefined ? {} : { scanIntervalMs: deps.scanIntervalMs }),
      ...(deps.rotatedIdleMs === undefined ? {} : { rotatedIdleMs: deps.rotatedIdleMs }),
      ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    });
    return {
      name: config.name,
      start: async () => tailer.start(),
      requestStop: () => tailer.requestStop(),
      stop: () => tailer.stop(),
      status: () => tailer.status(),
    };
  },
};
