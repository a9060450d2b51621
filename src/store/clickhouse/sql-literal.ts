/**
 * The one place a value becomes ClickHouse SQL text. ClickHouse 18.16 has no server-side query
 * parameters, so every filter value of a compiled query goes through these functions.
 */

// ClickHouse string literals take C-style backslash escapes (docs: "Syntax", "String"); escaping
// the backslash first and then the quote leaves no way to close the literal early.
const STRING_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

/** A JS string as a ClickHouse string literal, quotes included. Unicode passes through as UTF-8. */
export function sqlString(value: string): string {
  return `'${value.replace(/[\\'\0\n\r\t\b\f]/g, (c) => STRING_ESCAPES[c] ?? c)}'`;
}

/** A finite number as a SQL literal; anything else is a programming error, not user input to pass on. */
export function sqlNumber(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`not a finite number: ${String(value)}`);
  return String(value);
}

/** A list of strings as `('a', 'b')` for IN; an empty list matches nothing. */
export function sqlStringList(values: readonly string[]): string {
  return values.length === 0 ? '(NULL)' : `(${values.map(sqlString).join(', ')})`;
}

/** A database, table or column name as a back-quoted identifier. */
export function sqlIdentifier(name: string): string {
  return `\`${name.replace(/[\\`]/g, (c) => `\\${c}`)}\``;
}
