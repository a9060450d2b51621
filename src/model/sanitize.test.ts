import { describe, expect, it } from 'vitest';
import { sanitize } from './sanitize.js';

describe('sanitize', () => {
  it('escapes ESC sequences so a hostile user agent cannot drive the terminal', () => {
    const ua = 'kubectl\u001b]0;owned\u0007\u001b[2J\u001b[1A';
    const out = sanitize(ua);
    expect(out).toBe('kubectl\\x1b]0;owned\\x07\\x1b[2J\\x1b[1A');
    expect([...out].every((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)).toBe(true);
  });

  it('escapes C1 controls (8-bit CSI), DEL, CR and LF', () => {
    expect(sanitize('a\u009b2Jb\u007fc\r\nd')).toBe('a\\x9b2Jb\\x7fc\\r\\nd');
  });

  it('leaves printable text, tabs and non-ASCII letters alone', () => {
    expect(sanitize('system:serviceaccount:kube-system:café\tü 日本')).toBe(
      'system:serviceaccount:kube-system:café\tü 日本',
    );
  });
});
