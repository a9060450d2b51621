/**
 * Simulated time is kept as integer microseconds since the Unix epoch (safe in a double until the
 * year 2255), the precision of metav1.MicroTime that kube-apiserver writes.
 */

const prefixCache = new Map<number, string>();

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

const DIGITS3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
let lastSecond = Number.NaN;
let lastPrefix = '';

/** `2006-01-02T15:04:05.000000Z`, the layout of metav1.MicroTime in audit events. */
export function formatMicroTime(us: number): string {
  const second = Math.floor(us / 1_000_000);
  let prefix: string | undefined;
  if (second === lastSecond) prefix = lastPrefix;
  else {
    prefix = prefixCache.get(second);
    if (prefix === undefined) {
      // Events of one second interleave with watches ending minutes later; keep a small window.
      if (prefixCache.size > 4096) prefixCache.clear();
      prefix = `${new Date(second * 1000).toISOString().slice(0, 19)}.`;
      prefixCache.set(second, prefix);
    }
    lastSecond = second;
    lastPrefix = prefix;
  }
  const micros = us - second * 1_000_000;
  const hi = Math.floor(micros / 1000);
  return `${prefix}${DIGITS3[hi] ?? '000'}${DIGITS3[micros - hi * 1000] ?? '000'}Z`;
}

/** Parses an RFC 3339 timestamp into epoch microseconds, or undefined when it is not one. */
export function parseRfc3339(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/.exec(
    text,
  );
  if (m === null) return undefined;
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[8]?.toUpperCase() ?? 'Z'}`);
  if (Number.isNaN(ms)) return undefined;
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(`0${m[7]}`) * 1_000_000);
  return ms * 1000 + fraction;
}

/**
 * Formats nanoseconds like Go's time.Duration.String(), which is what kube-apiserver puts in the
 * `apiserver.latency.k8s.io/*` annotations: `780ns`, `12.5µs`, `1.234567ms`, `4.730661757s`, `1m2.5s`.
 */
export function formatGoDuration(ns: number): string {
  const n = Math.max(0, Math.round(ns));
  if (n === 0) return '0s';
  if (n < 1000) return `${n}ns`;
  if (n < 1_000_000) return `${fraction(n, 1000, 3)}µs`;
  if (n < 1_000_000_000) return `${fraction(n, 1_000_000, 6)}ms`;
  const totalSeconds = Math.floor(n / 1_000_000_000);
  const rest = n - totalSeconds * 1_000_000_000;
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  const sec = fraction(s * 1_000_000_000 + rest, 1_000_000_000, 9);
  if (h > 0) return `${h}h${m}m${sec}s`;
  if (m > 0) return `${m}m${sec}s`;
  return `${sec}s`;
}

function fraction(value: number, unit: number, digits: number): string {
  const whole = Math.floor(value / unit);
  const frac = value - whole * unit;
  if (frac === 0) return String(whole);
  return `${whole}.${pad(frac, digits).replace(/0+$/, '')}`;
}

/** Parses `90s`, `10m`, `1h30m`, `2d`, `1w`, `500ms` into milliseconds; undefined when malformed. */
export function parseDurationMs(text: string): number | undefined {
  const units: Record<string, number> = {
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
    w: 604_800_000,
  };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;
  let total = 0;
  let pos = 0;
  if (text.length === 0) return undefined;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (m === null || m[1] === undefined || m[2] === undefined) return undefined;
    total += Number(m[1]) * (units[m[2]] ?? 0);
    pos = re.lastIndex;
  }
  return total;
}
