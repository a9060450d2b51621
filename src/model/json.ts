/** A JSON object (not null, not an array), for walking parsed JSON without `any`. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
