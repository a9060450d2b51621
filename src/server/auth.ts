import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../model/errors.js';

/** What a request may do: read (every read endpoint, policy simulation included) or admin (also what changes state). */
export type AccessLevel = 'read' | 'admin';

/**
 * Bearer tokens, kept as SHA-256 digests so every comparison is of equal length and in constant
 * time, and so no token stays in memory as text longer than loading it.
 */
export class TokenAuth {
  private readonly tokens: { digest: Buffer; level: AccessLevel }[] = [];

  add(token: string, level: AccessLevel): this {
    if (token.length < 16)
      throw new UserError('KAUDIT_AUTH_INVALID', 'a bearer token must be at least 16 characters', {
        hint: 'make one with `openssl rand -base64 32` or `kaudit setup certs`',
      });
    this.tokens.push({ digest: digest(token), level });
    return this;
  }

  /** Each non-empty line of the file is a token (so tokens rotate by adding a line, then removing the old one). */
  addFile(file: string, level: AccessLevel): this {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserError(
        'KAUDIT_AUTH_INVALID',
        `cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    if (lines.length === 0)
      throw new UserError('KAUDIT_AUTH_INVALID', `the token file ${file} holds no token`);
    for (const line of lines) this.add(line, level);
    return this;
  }

  get configured(): boolean {
    return this.tokens.length > 0;
  }

  /** The level the request's `Authorization: Bearer` token grants, or undefined. */
  levelOf(authorization: string | null | undefined): AccessLevel | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (m === null) return undefined;
    const given = digest(m[1] as string);
    let level: AccessLevel | undefined;
    // Every token is compared, whichever matches, so the time taken says nothing about which.
    for (const t of this.tokens) {
      if (timingSafeEqual(given, t.digest) && level !== 'admin') level = t.level;
    }
    return level;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
