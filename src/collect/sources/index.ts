import { fileSourceType } from './file.js';
import type { SourceType } from './source.js';
import { webhookSourceType } from './webhook.js';

/** Every kind of `logs:` entry, by its `type:`. */
export const SOURCE_TYPES: ReadonlyMap<string, SourceType> = new Map<string, SourceType>(
  [fileSourceType, webhookSourceType].map((t) => [t.type, t as unknown as SourceType]),
);
