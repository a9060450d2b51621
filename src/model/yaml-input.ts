import {
  type Document,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseAllDocuments,
  parseDocument,
} from 'yaml';
import type { Diagnostic } from './errors.js';

export type FieldPath = readonly (string | number)[];

/** A YAML document as plain data, with the position of every field for messages. */
export interface YamlInput {
  value: unknown;
  /** Line and column of the node at `path`, or of its nearest ancestor present. */
  locate(path: FieldPath): { line: number; column: number } | undefined;
  /** YAML syntax errors; when there are any, `value` is undefined. */
  diagnostics: Diagnostic[];
}

export function readYaml(text: string, file?: string): YamlInput {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  return toInput(doc, lineCounter, file);
}

/** Every document of a multi-document YAML stream (`---` between them), each located on its own. */
export function readYamlDocuments(text: string, file?: string): YamlInput[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  if (!Array.isArray(docs)) return [toInput(docs as unknown as Document, lineCounter, file)];
  return docs.map((d) => toInput(d, lineCounter, file));
}

function toInput(doc: Document, lineCounter: LineCounter, file?: string): YamlInput {
  const diagnostics: Diagnostic[] = doc.errors.map((e) => {
    const d: Diagnostic = {
      severity: 'error',
      code: 'KAUDIT_CONFIG_YAML',
      message: e.message.split('\n')[0] ?? '',
    };
    if (file !== undefined) d.file = file;
    // Without prettyErrors the parser leaves linePos empty; the offset is always there.
    const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
    Object.assign(d, { line: pos.line, column: pos.col });
    return d;
  });
  const locate = (path: FieldPath) => {
    let node: Node | null | undefined = doc.contents;
    let found = node;
    for (const step of path) {
      if (isMap(node)) {
        const items: { key: unknown; value: unknown }[] = node.items;
        const pair = items.find((p) => isScalar(p.key) && String(p.key.value) === String(step));
        node = pair === undefined ? undefined : ((pair.value as Node | null) ?? (pair.key as Node));
      } else if (isSeq(node) && typeof step === 'number') node = node.items[step] as Node | undefined;
      else node = undefined;
      if (node === undefined || node === null) break;
      found = node;
    }
    const range = found?.range;
    if (!range) return undefined;
    const pos = lineCounter.linePos(range[0]);
    return { line: pos.line, column: pos.col };
  };
  let value: unknown;
  if (diagnostics.length === 0) {
    const r = yamlValue(doc);
    if ('error' in r)
      diagnostics.push({
        severity: 'error',
        code: 'KAUDIT_CONFIG_YAML',
        message: r.error,
        ...(file === undefined ? {} : { file }),
      });
    else value = r.value;
  }
  return { value, locate, diagnostics };
}

/**
 * The document as plain data. A few aliases are fine; a document whose aliases expand past a
 * hundred (an alias bomb: a few lines that would take gigabytes) is refused, not expanded.
 */
export function yamlValue(doc: Document): { value: unknown } | { error: string } {
  try {
    return { value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (err) {
    return {
      error: `too many aliases to expand (${err instanceof Error ? err.message : String(err)}): an alias bomb?`,
    };
  }
}

/** `logs[0].tls.cert` */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const step of path) out += typeof step === 'number' ? `[${step}]` : out === '' ? step : `.${step}`;
  return out;
}
