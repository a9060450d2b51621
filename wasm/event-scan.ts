// AssemblyScript, compiled to dist/wasm/event-scan.wasm (see asconfig.json). The byte-level hot
// path of kaudit's ingest: reading each event's identity and flags in one pass over many events,
// where JS would pay a native call or a slow bounds-checked loop per event. No managed objects:
// everything is raw loads and stores in linear memory laid out by src/model/event-scan.ts.
//
// Every function reads kube-apiserver's own compact v1 output only (the Go struct's field order,
// audit/v1 types.go). Whatever it cannot vouch for it leaves to the JS code, whose results these
// must equal: model/prepare.ts needsParse and model/event-key.ts eventKey.

const NL: u8 = 0x0a;
// The staging rows' field separator: model/event-scan.ts STAGING_ROW sets it (setStagingSeparator)
// before any call, so the format has one definition.
let SEP: u8 = 0;
const CR: u8 = 0x0d;
const QUOTE: u8 = 0x22;
const BACKSLASH: u8 = 0x5c;

// Event facts, 32 bytes per event: u32 flags, 4 x u32 auditID, u32 stage (1-4), f64 stage time (ms).
const FACT_BYTES: usize = 32;
const F_CTRL: u32 = 1; // a raw SEP, NL or CR somewhere in the event
const F_KEY: u32 = 2; // auditID is a lowercase UUID, stage and stage time are read
const F_LAT: u32 = 4; // may carry apiserver.latency.k8s.io annotations
const F_PLAIN: u32 = 8; // compact v1 in kube-apiserver's order with nothing to redact (needsParse false)

// Patterns live in a data segment; memory.data returns their address.
const V1_PREFIX = memory.data<u8>([
  0x7b, 0x22, 0x6b, 0x69, 0x6e, 0x64, 0x22, 0x3a, 0x22, 0x45, 0x76, 0x65, 0x6e, 0x74, 0x22, 0x2c, 0x22, 0x61, 0x70,
  0x69, 0x56, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x22, 0x3a, 0x22, 0x61, 0x75, 0x64, 0x69, 0x74, 0x2e, 0x6b, 0x38,
  0x73, 0x2e, 0x69, 0x6f, 0x2f, 0x76, 0x31, 0x22, 0x2c, 0x22, 0x6c, 0x65, 0x76, 0x65, 0x6c, 0x22, 0x3a, 0x22,
]); // {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"
const V1_PREFIX_LEN: usize = 56;
// The prefix without `"level":"`: needsParse passes lines that match it even when the head does not.
const V1_OBJECT_LEN: usize = 47;

// Static room for the ASCII patterns below; JS lays out its buffers from __heap_base on.
const PATTERNS = memory.data(512);
let patternsUsed: usize = 0;

function str(s: string): usize {
  // String literals are UTF-16 in AssemblyScript: each is copied to ASCII bytes once, at start.
  const n = <usize>s.length;
  const p = PATTERNS + patternsUsed;
  for (let i: usize = 0; i < n; i++) store<u8>(p + i, <u8>s.charCodeAt(<i32>i));
  patternsUsed += n;
  return p;
}

const AUDIT_ID = str('","auditID":"');
const STAGE = str('","stage":"');
const REQUEST_URI = str('","requestURI":"');
const RECEIVED = str('"requestReceivedTimestamp":"');
const STAGE_TS = str('","stageTimestamp":"');
const ANNOTATIONS = str(',"annotations":{');
const LATENCY = str('apiserver.latency.k8s.io/');
const BODY_MARK = str('Object"');
const RES_SECRETS = str('"secrets"');
const RES_TOKENREVIEWS = str('"tokenreviews"');
const RES_SERVICEACCOUNTS = str('"serviceaccounts"');
const KIND_SECRET = str('"Secret"');
const KIND_SECRETLIST = str('"SecretList"');
const KIND_TOKENREVIEW = str('"TokenReview"');
const KIND_TOKENREQUEST = str('"TokenRequest"');
const ST_RECEIVED = str('RequestReceived');
const ST_STARTED = str('ResponseStarted');
const ST_COMPLETE = str('ResponseComplete');
const ST_PANIC = str('Panic');
// needsParse's URI test, /token|secret|passw|key|sig|code=/i, as lowercase words.
const W_TOKEN = str('token');
const W_SECRET = str('secret');
const W_PASSW = str('passw');
const W_KEY = str('key');
const W_SIG = str('sig');
const W_CODE = str('code=');

/** The lowercase `word` at p (ASCII case folded), within [p, end). */
function wordAt(p: usize, end: usize, word: usize, n: usize): bool {
  if (p + n > end) return false;
  for (let i: usize = 0; i < n; i++) {
    let b = load<u8>(p + i);
    if (b >= 0x41 && b <= 0x5a) b += 0x20;
    if (b != load<u8>(word + i)) return false;
  }
  return true;
}

@inline
function bytesAt(s: usize, e: usize, at: usize, token: usize, n: usize): bool {
  if (at < s || at + n > e) return false;
  return same(at, token, n);
}

/** The closing quote of a JSON string starting at `at`; 0 past `max` bytes or at an escape. */
function plainStringEnd(e: usize, at: usize, max: usize): usize {
  let end = at + max;
  if (end > e) end = e;
  for (let p = at; p < end; p++) {
    const b = load<u8>(p);
    if (b == QUOTE) return p;
    if (b == BACKSLASH) return 0;
  }
  return 0;
}

/** `n` bytes at a equal those at b, compared eight at a time. */
@inline
function same(a: usize, b: usize, n: usize): bool {
  let i: usize = 0;
  for (; i + 8 <= n; i += 8) if (load<u64>(a + i) != load<u64>(b + i)) return false;
  for (; i < n; i++) if (load<u8>(a + i) != load<u8>(b + i)) return false;
  return true;
}

/**
 * First occurrence of `token` in [from, e), or 0. Scans sixteen bytes at a time for the token's byte
 * at `anchor`, chosen rare in JSON (a quote or a common letter would stop the scan at every field).
 */
function indexOf(from: usize, e: usize, token: usize, n: usize, anchor: usize): usize {
  if (n == 0 || e < from + n) return 0;
  const a = load<u8>(token + anchor);
  const want = i8x16.splat(<i8>a);
  // Anchor positions q in [from + anchor, e - n + anchor].
  let q = from + anchor;
  const qEnd = e - n + anchor + 1;
  while (q + 16 <= qEnd) {
    let mask = i8x16.bitmask(i8x16.eq(v128.load(q), want));
    while (mask != 0) {
      const p = q + <usize>ctz(mask) - anchor;
      if (same(p, token, n)) return p;
      mask &= mask - 1;
    }
    q += 16;
  }
  for (; q < qEnd; q++) if (load<u8>(q) == a && same(q - anchor, token, n)) return q - anchor;
  return 0;
}

/**
 * Last occurrence of `token` starting in [s, e - n], or 0. Scans back sixteen bytes at a time for
 * the token's byte at `anchor`, chosen rare in JSON (not a quote).
 */
function lastIndexOf(s: usize, e: usize, token: usize, n: usize, anchor: usize): usize {
  if (e < s + n) return 0;
  const want = i8x16.splat(<i8>load<u8>(token + anchor));
  // Candidate token starts p in [s, e - n]; the anchor byte is at p + anchor.
  let hi = e - n + anchor + 1; // one past the last anchor position
  const lo = s + anchor;
  while (hi >= lo + 16) {
    let mask = i8x16.bitmask(i8x16.eq(v128.load(hi - 16), want));
    while (mask != 0) {
      const bit = 31 - clz(mask);
      const p = hi - 16 + <usize>bit - anchor;
      if (same(p, token, n)) return p;
      mask &= ~(1 << bit);
    }
    hi -= 16;
  }
  while (hi > lo) {
    hi--;
    const p = hi - anchor;
    if (load<u8>(hi) == load<u8>(token + anchor) && same(p, token, n)) return p;
  }
  return 0;
}

function hasControl(s: usize, e: usize): bool {
  const us = i8x16.splat(<i8>SEP);
  const nl = i8x16.splat(<i8>NL);
  const cr = i8x16.splat(<i8>CR);
  let p = s;
  while (p + 16 <= e) {
    const v = v128.load(p);
    if (v128.any_true(v128.or(v128.or(i8x16.eq(v, us), i8x16.eq(v, nl)), i8x16.eq(v, cr)))) return true;
    p += 16;
  }
  for (; p < e; p++) {
    const b = load<u8>(p);
    if (b == SEP || b == NL || b == CR) return true;
  }
  return false;
}

// Head positions of the last readHead call.
let headIdStart: usize = 0;
let headStageStart: usize = 0;
let headStageEnd: usize = 0;
let headUriStart: usize = 0;

/** model/apiserver-line.ts readApiserverHead. */
function readHead(s: usize, e: usize): bool {
  if (!bytesAt(s, e, s, V1_PREFIX, V1_PREFIX_LEN)) return false;
  const levelEnd = plainStringEnd(e, s + V1_PREFIX_LEN, 20);
  if (levelEnd == 0 || !bytesAt(s, e, levelEnd, AUDIT_ID, 13)) return false;
  headIdStart = levelEnd + 13;
  const idEnd = plainStringEnd(e, headIdStart, 128);
  if (idEnd == 0 || !bytesAt(s, e, idEnd, STAGE, 11)) return false;
  headStageStart = idEnd + 11;
  headStageEnd = plainStringEnd(e, headStageStart, 32);
  if (headStageEnd == 0 || !bytesAt(s, e, headStageEnd, REQUEST_URI, 16)) return false;
  headUriStart = headStageEnd + 16;
  return true;
}

@inline
function digit(p: usize): i32 {
  const d = <i32>load<u8>(p) - 0x30;
  return d >= 0 && d <= 9 ? d : -1000000;
}

@inline
function num(p: usize, n: i32): i32 {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 10 + digit(p + i);
  return v;
}


/**
 * `YYYY-MM-DDTHH:MM:SS[.fraction]Z` to epoch ms (fraction below 1 ms dropped), as event-key.ts
 * parseTimestampMs reads it; NaN for anything else, including values Date.UTC would roll over
 * (month 13, Feb 30) and two-digit years, which are left to the JS parser.
 */
// The last `YYYY-MM-DDTHH:MM:SS` read and its epoch ms: consecutive events mostly share the second.
const LAST_SECOND = memory.data(24);
let lastSecondMs: f64 = NaN;

function timestampMs(start: usize, end: usize): f64 {
  if (end < start + 20 || load<u8>(end - 1) != 0x5a) return NaN;
  let ms = 0;
  if (end > start + 20) {
    if (load<u8>(start + 19) != 0x2e) return NaN;
    const fracDigits = <i32>(end - 1 - (start + 20));
    if (fracDigits < 1) return NaN;
    for (let i = 0; i < fracDigits; i++) {
      const d = digit(start + 20 + i);
      if (d < 0) return NaN;
      if (i < 3) ms = ms * 10 + d;
    }
    for (let i = fracDigits; i < 3; i++) ms *= 10;
  }
  if (
    load<u64>(start) == load<u64>(LAST_SECOND) &&
    load<u64>(start + 8) == load<u64>(LAST_SECOND + 8) &&
    load<u16>(start + 16) == load<u16>(LAST_SECOND + 16) &&
    load<u8>(start + 18) == load<u8>(LAST_SECOND + 18) &&
    !isNaN(lastSecondMs)
  )
    return lastSecondMs + <f64>ms;
  const second = secondMs(start);
  if (isNaN(second)) return NaN;
  memory.copy(LAST_SECOND, start, 19);
  lastSecondMs = second;
  return second + <f64>ms;
}

/** `YYYY-MM-DDTHH:MM:SS` at start to epoch ms, or NaN. */
function secondMs(start: usize): f64 {
  if (load<u8>(start + 4) != 0x2d || load<u8>(start + 7) != 0x2d || load<u8>(start + 10) != 0x54) return NaN;
  if (load<u8>(start + 13) != 0x3a || load<u8>(start + 16) != 0x3a) return NaN;
  const y = num(start, 4);
  const mo = num(start + 5, 2);
  const d = num(start + 8, 2);
  const h = num(start + 11, 2);
  const mi = num(start + 14, 2);
  const sec = num(start + 17, 2);
  if (y < 100 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
    return NaN;
  const leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  const dim = mo == 2 ? (leap ? 29 : 28) : mo == 4 || mo == 6 || mo == 9 || mo == 11 ? 30 : 31;
  if (d > dim) return NaN;
  // Days from 1970-01-01 (H. Hinnant's days_from_civil).
  const yy = mo <= 2 ? y - 1 : y;
  const era = yy / 400;
  const yoe = yy - era * 400;
  const doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const days = <f64>(era * 146097 + doe - 719468);
  return days * 86400000 + <f64>(h * 3600000 + mi * 60000 + sec * 1000);
}

// Lowercase hex digit values by byte; 0x80 for every other byte.
const HEX_VALUE = memory.data(256);
for (let b = 0; b < 256; b++) {
  let v: u8 = 0x80;
  if (b >= 0x30 && b <= 0x39) v = <u8>(b - 0x30);
  else if (b >= 0x61 && b <= 0x66) v = <u8>(b - 0x61 + 10);
  store<u8>(HEX_VALUE + <usize>b, v);
}

/** `n` lowercase hex digits at p as a number; bit 7 of `bad` is set by any other byte. */
let bad: u32 = 0;

@inline
function hexDigits(p: usize, n: usize): u32 {
  let w: u32 = 0;
  for (let i: usize = 0; i < n; i++) {
    const v = <u32>load<u8>(HEX_VALUE + <usize>load<u8>(p + i));
    bad |= v;
    w = (w << 4) | (v & 0xf);
  }
  return w;
}

/** A lowercase 8-4-4-4-12 UUID into four words at `out`; false for any other auditID. */
function readUuid(at: usize, end: usize, out: usize): bool {
  if (end - at != 36) return false;
  if (load<u8>(at + 8) != 0x2d || load<u8>(at + 13) != 0x2d || load<u8>(at + 18) != 0x2d || load<u8>(at + 23) != 0x2d)
    return false;
  bad = 0;
  store<u32>(out, hexDigits(at, 8));
  store<u32>(out + 4, (hexDigits(at + 9, 4) << 16) | hexDigits(at + 14, 4));
  store<u32>(out + 8, (hexDigits(at + 19, 4) << 16) | hexDigits(at + 24, 4));
  store<u32>(out + 12, hexDigits(at + 28, 8));
  return (bad & 0x80) == 0;
}

function stageNumber(at: usize, end: usize): u32 {
  const n = end - at;
  if (n == 15 && same(at, ST_RECEIVED, 15)) return 1;
  if (n == 15 && same(at, ST_STARTED, 15)) return 2;
  if (n == 16 && same(at, ST_COMPLETE, 16)) return 3;
  if (n == 5 && same(at, ST_PANIC, 5)) return 4;
  return 0;
}

/**
 * event-key.ts eventKey for a line whose head readHead accepted: F_KEY (and F_LAT) when the key is
 * read here, 0 when eventKey must decide.
 */
function readKey(s: usize, e: usize, fact: usize): u32 {
  const idEnd = headStageStart - 11;
  if (!readUuid(headIdStart, idEnd, fact + 4)) return 0;
  const stage = stageNumber(headStageStart, headStageEnd);
  if (stage == 0) return 0;
  // Anchored on the R of Received.
  const r = lastIndexOf(s, e, RECEIVED, 28, 8);
  if (r == 0) return 0;
  const tsStart = r + 28;
  const tsEnd = plainStringEnd(e, tsStart, 64);
  if (tsEnd == 0 || isNaN(timestampMs(tsStart, tsEnd))) return 0;
  if (!bytesAt(s, e, tsEnd, STAGE_TS, 20)) return 0;
  const stageStart = tsEnd + 20;
  const stageEnd = plainStringEnd(e, stageStart, 64);
  if (stageEnd == 0) return 0;
  const ms = timestampMs(stageStart, stageEnd);
  if (isNaN(ms)) return 0;
  store<u32>(fact + 20, stage);
  store<f64>(fact + 24, ms);
  // The annotations, when kube-apiserver writes any, come last, right after stageTimestamp.
  if (stageEnd == e - 2 && load<u8>(e - 1) == 0x7d) return F_KEY;
  if (!bytesAt(s, e, stageEnd + 1, ANNOTATIONS, 16)) return F_KEY | F_LAT;
  return indexOf(stageEnd, e, LATENCY, 25, 16) != 0 ? F_KEY | F_LAT : F_KEY;
}

/** One of needsParse's URI words starts at p (its first letter, case folded, is `b`). */
@inline
function uriWordAt(p: usize, end: usize, b: u32): bool {
  if (b == 0x74) return wordAt(p, end, W_TOKEN, 5);
  if (b == 0x73) return wordAt(p, end, W_SECRET, 6) || wordAt(p, end, W_SIG, 3);
  if (b == 0x70) return wordAt(p, end, W_PASSW, 5);
  if (b == 0x6b) return wordAt(p, end, W_KEY, 3);
  if (b == 0x63) return wordAt(p, end, W_CODE, 5);
  return false;
}

/** The first `?` or quote in [p, e), or e. */
function queryOrQuote(p: usize, e: usize): usize {
  const mark = i8x16.splat(0x3f);
  const quote = i8x16.splat(<i8>QUOTE);
  while (p + 16 <= e) {
    const v = v128.load(p);
    const mask = i8x16.bitmask(v128.or(i8x16.eq(v, mark), i8x16.eq(v, quote)));
    if (mask != 0) return p + <usize>ctz(mask);
    p += 16;
  }
  while (p < e && load<u8>(p) != 0x3f && load<u8>(p) != QUOTE) p++;
  return p;
}

/**
 * The requestURI's query string names a credential (prepare.ts uriNeedsRedaction). Sixteen bytes
 * at a time, it stops only at the first two letters of a word (ASCII case folded): to, se, si, pa,
 * ke or co.
 */
function uriNeedsRedaction(s: usize, e: usize, uriStart: usize): bool {
  const q = queryOrQuote(uriStart, e);
  if (q >= e || load<u8>(q) != 0x3f) return false;
  let end = q + 1;
  while (end < e && load<u8>(end) != QUOTE) end++;
  if (end >= e) return false;
  const fold = i8x16.splat(0x20);
  let p = q;
  // The second letter is read at p + 1 <= end, the closing quote at most.
  while (p + 17 <= end + 1) {
    const a = v128.or(v128.load(p), fold);
    const n = v128.or(v128.load(p + 1), fold);
    const nO = i8x16.eq(n, i8x16.splat(0x6f));
    const nE = i8x16.eq(n, i8x16.splat(0x65));
    const hit = v128.or(
      v128.or(v128.and(i8x16.eq(a, i8x16.splat(0x74)), nO), v128.and(i8x16.eq(a, i8x16.splat(0x63)), nO)),
      v128.or(
        v128.and(i8x16.eq(a, i8x16.splat(0x73)), v128.or(nE, i8x16.eq(n, i8x16.splat(0x69)))),
        v128.or(
          v128.and(i8x16.eq(a, i8x16.splat(0x70)), i8x16.eq(n, i8x16.splat(0x61))),
          v128.and(i8x16.eq(a, i8x16.splat(0x6b)), nE),
        ),
      ),
    );
    let mask = i8x16.bitmask(hit);
    while (mask != 0) {
      const at = p + <usize>ctz(mask);
      if (uriWordAt(at, end, load<u8>(at) | 0x20)) return true;
      mask &= mask - 1;
    }
    p += 16;
  }
  for (; p < end; p++) if (uriWordAt(p, end, load<u8>(p) | 0x20)) return true;
  return false;
}

/** The kind at `q - 1` (a quote there) is one the store redacts: Secret(List), TokenRe(view|quest). */
@inline
function sensitiveKindAt(q: usize, e: usize): bool {
  const p = q - 1;
  return load<u8>(q) == 0x53
    ? bytesAt(p, e, p, KIND_SECRET, 8) || bytesAt(p, e, p, KIND_SECRETLIST, 12)
    : bytesAt(p, e, p, KIND_TOKENREVIEW, 13) || bytesAt(p, e, p, KIND_TOKENREQUEST, 14);
}

/**
 * `"Secret"`, `"SecretList"`, `"TokenReview"` or `"TokenRequest"` anywhere in [s, e): one pass for
 * all four, sixteen bytes at a time, stopping only where an S or a T follows a quote.
 */
function hasSensitiveKind(s: usize, e: usize): bool {
  const quote = i8x16.splat(<i8>QUOTE);
  const upperS = i8x16.splat(0x53);
  const upperT = i8x16.splat(0x54);
  // q: where the S or T would be; the quote before it is at q - 1.
  let q = s + 1;
  while (q + 16 <= e) {
    const v = v128.load(q);
    let mask = i8x16.bitmask(
      v128.and(v128.or(i8x16.eq(v, upperS), i8x16.eq(v, upperT)), i8x16.eq(v128.load(q - 1), quote)),
    );
    while (mask != 0) {
      if (sensitiveKindAt(q + <usize>ctz(mask), e)) return true;
      mask &= mask - 1;
    }
    q += 16;
  }
  for (; q < e; q++) {
    const b = load<u8>(q);
    if ((b == 0x53 || b == 0x54) && load<u8>(q - 1) == QUOTE && sensitiveKindAt(q, e)) return true;
  }
  return false;
}

// The objects whose keys hasDuplicateKey checks, besides the event's own.
const OBJ_USER = str('user');
const OBJ_IMPERSONATED = str('impersonatedUser');
const OBJ_OBJECT_REF = str('objectRef');
const OBJ_STATUS = str('responseStatus');
const OBJ_ANNOTATIONS = str('annotations');
// model/duplicate-key.ts MAX_CHECKED_KEYS. Keys are kept as (start, length) u32 pairs.
const MAX_KEYS: i32 = 64;
const TOP_KEYS = memory.data(MAX_KEYS * 8);
const INNER_KEYS = memory.data(MAX_KEYS * 8);
// Set by stringEnd: the string held a backslash.
let stringEscaped = false;

/** The closing quote of a string whose first byte is at p, or 0; skips escapes sixteen bytes at a time. */
function stringEnd(p: usize, e: usize): usize {
  const quote = i8x16.splat(<i8>QUOTE);
  const backslash = i8x16.splat(<i8>BACKSLASH);
  stringEscaped = false;
  while (p < e) {
    let at: usize = 0;
    while (p + 16 <= e) {
      const v = v128.load(p);
      const mask = i8x16.bitmask(v128.or(i8x16.eq(v, quote), i8x16.eq(v, backslash)));
      if (mask != 0) {
        at = p + <usize>ctz(mask);
        break;
      }
      p += 16;
    }
    if (at == 0) {
      while (p < e && load<u8>(p) != QUOTE && load<u8>(p) != BACKSLASH) p++;
      if (p >= e) return 0;
      at = p;
    }
    if (load<u8>(at) == QUOTE) return at;
    stringEscaped = true;
    p = at + 2;
  }
  return 0;
}

/** The next quote or bracket in [p, e), or e. */
function nextStructural(p: usize, e: usize): usize {
  const quote = i8x16.splat(<i8>QUOTE);
  const open = i8x16.splat(0x7b);
  const close = i8x16.splat(0x7d);
  const lower = i8x16.splat(0x20);
  while (p + 16 <= e) {
    const v = v128.load(p);
    // [ and ] are { and } without bit 5.
    const folded = v128.or(v, lower);
    const mask = i8x16.bitmask(v128.or(i8x16.eq(v, quote), v128.or(i8x16.eq(folded, open), i8x16.eq(folded, close))));
    if (mask != 0) return p + <usize>ctz(mask);
    p += 16;
  }
  while (p < e) {
    const b = load<u8>(p) | 0x20;
    if (load<u8>(p) == QUOTE || b == 0x7b || b == 0x7d) return p;
    p++;
  }
  return e;
}

@inline
function isSpaceByte(b: u8): bool {
  return b == 0x20 || b == 0x09 || b == 0x0d || b == 0x0a;
}

/** Whether the n keys at `keys` hold the key at [at, at + len); if not, it is added. */
function seenKey(keys: usize, n: i32, at: usize, len: usize): bool {
  for (let i = 0; i < n; i++) {
    const k = keys + (<usize>i << 3);
    if (<usize>load<u32>(k + 4) == len && same(<usize>load<u32>(k), at, len)) return true;
  }
  store<u32>(keys + (<usize>n << 3), <u32>at);
  store<u32>(keys + (<usize>n << 3) + 4, <u32>len);
  return false;
}

@inline
function namedAt(at: usize, len: usize, name: usize, n: usize): bool {
  return len == n && same(at, name, n);
}

function checkedObject(at: usize, len: usize): bool {
  return (
    namedAt(at, len, OBJ_USER, 4) ||
    namedAt(at, len, OBJ_IMPERSONATED, 16) ||
    namedAt(at, len, OBJ_OBJECT_REF, 9) ||
    namedAt(at, len, OBJ_STATUS, 14) ||
    namedAt(at, len, OBJ_ANNOTATIONS, 11)
  );
}

/**
 * Past a nested value whose opening bracket is just before p: the position after the bracket that
 * closes it, or 0 when the line ends first. Bodies are most of an event's bytes and hold no key
 * hasDuplicateKey checks, so they are skipped sixteen bytes at a time: quotes give the bytes
 * inside strings (a prefix XOR of their mask), and a block is looked into byte by byte only when
 * it may hold the closing bracket or holds a backslash.
 */
function skipNested(p: usize, e: usize): usize {
  const quote = i8x16.splat(<i8>QUOTE);
  const backslash = i8x16.splat(<i8>BACKSLASH);
  const open = i8x16.splat(0x7b);
  const close = i8x16.splat(0x7d);
  const lower = i8x16.splat(0x20);
  let depth: i32 = 1;
  // All ones while inside a string at a block boundary.
  let inString: u32 = 0;
  let escaped = false;
  while (p < e) {
    if (p + 16 <= e && !escaped) {
      const v = v128.load(p);
      if (!v128.any_true(i8x16.eq(v, backslash))) {
        const folded = v128.or(v, lower);
        let x = <u32>i8x16.bitmask(i8x16.eq(v, quote));
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x = (x ^ inString) & 0xffff;
        const opens = <u32>i8x16.bitmask(i8x16.eq(folded, open)) & ~x;
        const closes = <u32>i8x16.bitmask(i8x16.eq(folded, close)) & ~x;
        const n = <i32>popcnt(closes);
        if (n >= depth) {
          // The closing bracket may be in this block: take its brackets in order.
          let m = opens | closes;
          while (m != 0) {
            const bit = ctz(m);
            if (((closes >> bit) & 1) != 0) {
              if (--depth == 0) return p + <usize>bit + 1;
            } else depth++;
            m &= m - 1;
          }
        } else depth += <i32>popcnt(opens) - n;
        inString = (x & 0x8000) != 0 ? 0xffff : 0;
        p += 16;
        continue;
      }
    }
    // Byte by byte through this block (or the line's last bytes).
    let end = p + 16;
    if (end > e) end = e;
    for (; p < end; p++) {
      const b = load<u8>(p);
      if (escaped) escaped = false;
      else if (inString != 0) {
        if (b == BACKSLASH) escaped = true;
        else if (b == QUOTE) inString = 0;
      } else if (b == QUOTE) inString = 0xffff;
      else if ((b | 0x20) == 0x7b) depth++;
      else if ((b | 0x20) == 0x7d && --depth == 0) return p + 1;
    }
  }
  return 0;
}

/**
 * model/duplicate-key.ts hasDuplicateKey: a key repeated (or escaped) among the event's own keys or
 * those of user, impersonatedUser, objectRef, responseStatus or annotations; also true for more
 * than MAX_KEYS keys in one of them and for brackets that do not balance. Keys are kept as offsets
 * into the line (linear memory), so nothing is copied; every other nested value is skipped.
 */
function hasDuplicateKey(s: usize, e: usize): bool {
  let depth: i32 = 0;
  let topCount: i32 = 0;
  let innerCount: i32 = 0;
  let lastKeyAt: usize = 0;
  let lastKeyLen: usize = 0;
  let p = s;
  for (;;) {
    p = nextStructural(p, e);
    if (p >= e) break;
    const b = load<u8>(p);
    if (b == QUOTE) {
      const end = stringEnd(p + 1, e);
      if (end == 0) return true;
      if (depth > 0) {
        let after = end + 1;
        while (after < e && isSpaceByte(load<u8>(after))) after++;
        if (after < e && load<u8>(after) == 0x3a) {
          if (stringEscaped) return true;
          const at = p + 1;
          const len = end - at;
          if (depth == 1) {
            if (topCount >= MAX_KEYS || seenKey(TOP_KEYS, topCount, at, len)) return true;
            topCount++;
            lastKeyAt = at;
            lastKeyLen = len;
          } else {
            if (innerCount >= MAX_KEYS || seenKey(INNER_KEYS, innerCount, at, len)) return true;
            innerCount++;
          }
        }
      }
      p = end + 1;
    } else if ((b | 0x20) == 0x7b) {
      if (depth == 0 || (depth == 1 && b == 0x7b && checkedObject(lastKeyAt, lastKeyLen))) {
        depth++;
        innerCount = 0;
        p++;
      } else {
        p = skipNested(p + 1, e);
        if (p == 0) return true;
      }
    } else {
      depth--;
      if (depth < 0) return true;
      p++;
    }
  }
  return depth != 0;
}

/**
 * prepare.ts needsParse, false branch only: true when the line is surely compact v1 with nothing
 * to redact. `headOk` is readHead's answer for the line.
 */
function isPlain(s: usize, e: usize, headOk: bool, maxEventBytes: usize, redact: bool): bool {
  if (e - s > maxEventBytes || e == s || load<u8>(e - 1) != 0x7d) return false;
  if (!headOk) return false;
  if (!redact) return !hasDuplicateKey(s, e);
  const bodyAt = indexOf(s, e, BODY_MARK, 7, 0);
  if (bodyAt != 0) {
    if (
      indexOf(s, bodyAt, RES_SECRETS, 9, 3) != 0 ||
      indexOf(s, bodyAt, RES_TOKENREVIEWS, 14, 3) != 0 ||
      indexOf(s, bodyAt, RES_SERVICEACCOUNTS, 17, 4) != 0
    )
      return false;
    if (hasSensitiveKind(s, e)) return false;
  }
  return !uriNeedsRedaction(s, e, headUriStart) && !hasDuplicateKey(s, e);
}

/**
 * Facts for `n` events laid end to end from `base`; event i spans offsets[i] to offsets[i + 1]
 * (u32, relative to base). Writes FACT_BYTES per event at `facts`.
 */
export function eventFacts(
  base: usize,
  offsets: usize,
  n: i32,
  facts: usize,
  plain: bool,
  maxEventBytes: u32,
  redact: bool,
): void {
  for (let i = 0; i < n; i++) {
    const s = base + <usize>load<u32>(offsets + (<usize>i << 2));
    const e = base + <usize>load<u32>(offsets + (<usize>(i + 1) << 2));
    const fact = facts + <usize>i * FACT_BYTES;
    let flags: u32 = hasControl(s, e) ? F_CTRL : 0;
    const headOk = readHead(s, e);
    if (headOk) flags |= readKey(s, e, fact);
    if (plain && isPlain(s, e, headOk, maxEventBytes, redact)) flags |= F_PLAIN;
    store<u32>(fact, flags);
  }
}

/**
 * The store's staging rows, in the format model/event-scan.ts STAGING_ROW defines and passes in:
 * each kept event, then the separator, the decimal tag `indexStep * (firstIndex + i) + (keep[i] - 1)`,
 * and `newline`; keep[i] 0 skips the event (1 + the latency bit otherwise). Returns the bytes written.
 */
export function stagingRows(
  base: usize,
  offsets: usize,
  n: i32,
  keep: usize,
  firstIndex: i32,
  out: usize,
  newline: u8,
  indexStep: u32,
): u32 {
  let pos: usize = out;
  for (let i = 0; i < n; i++) {
    const k = load<u8>(keep + <usize>i);
    if (k == 0) continue;
    const s = base + <usize>load<u32>(offsets + (<usize>i << 2));
    const e = base + <usize>load<u32>(offsets + (<usize>(i + 1) << 2));
    memory.copy(pos, s, e - s);
    pos += e - s;
    let m: u64 = <u64>indexStep * <u64>(firstIndex + i) + <u64>(k - 1);
    store<u8>(pos++, SEP);
    // Decimal digits, most significant first.
    let digits: usize = 1;
    for (let t = m; t >= 10; t /= 10) digits++;
    for (let d = digits; d > 0; d--) {
      store<u8>(pos + d - 1, <u8>(0x30 + <u32>(m % 10)));
      m /= 10;
    }
    pos += digits;
    store<u8>(pos++, newline);
  }
  return <u32>(pos - out);
}

/** The staging rows' separator (model/event-scan.ts STAGING_ROW), set once per instance. */
export function setStagingSeparator(separator: u8): void {
  SEP = separator;
}

/** Where JS may start laying out its buffers. */
export function heapBase(): usize {
  return __heap_base;
}

let linesEnd: usize = 0;

/** Where the last lineFacts call stopped (relative to its base): the start of the first line not read. */
export function linesScanned(): u32 {
  return <u32>linesEnd;
}

/**
 * Splits [base + from, base + to) at each NL into at most maxLines lines (the bytes after the last
 * NL are not a line) and writes each line's start and end (relative to base, plus `bias`; NL
 * excluded) and flags (F_PLAIN or 0) as u32 at starts, ends and flags. Returns the number of lines;
 * linesScanned() tells where to go on from.
 */
export function lineFacts(
  base: usize,
  from: usize,
  to: usize,
  bias: u32,
  starts: usize,
  ends: usize,
  flags: usize,
  maxLines: i32,
  maxEventBytes: u32,
  redact: bool,
): i32 {
  const e = base + to;
  const nl = i8x16.splat(<i8>NL);
  let lineStart = base + from;
  let p = lineStart;
  let n = 0;
  while (n < maxLines) {
    // Next NL from p.
    let at: usize = 0;
    while (p + 16 <= e) {
      const mask = i8x16.bitmask(i8x16.eq(v128.load(p), nl));
      if (mask != 0) {
        at = p + <usize>ctz(mask);
        break;
      }
      p += 16;
    }
    if (at == 0) {
      while (p < e && load<u8>(p) != NL) p++;
      if (p >= e) break;
      at = p;
    }
    const i = <usize>n << 2;
    store<u32>(starts + i, <u32>(lineStart - base) + bias);
    store<u32>(ends + i, <u32>(at - base) + bias);
    store<u32>(flags + i, isPlain(lineStart, at, readHead(lineStart, at), maxEventBytes, redact) ? F_PLAIN : 0);
    n++;
    lineStart = at + 1;
    p = lineStart;
  }
  linesEnd = lineStart - base;
  return n;
}
