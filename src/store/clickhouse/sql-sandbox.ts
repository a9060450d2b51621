/**
 * What user SQL may name. The server enforces the rest (readonly=1 on the query: no writes, no
 * settings changes, no table functions); this check keeps a query to the store's `events` view, so
 * that `kaudit query` does not read the server's other databases or system tables. It reads the
 * text as ClickHouse's lexer does (strings, quoted names, comments) and looks at what follows
 * FROM, JOIN and IN.
 */
import { UserError } from '../../model/errors.js';

type Token = { kind: 'word' | 'quoted' | 'string' | 'number' | 'punct'; text: string };

function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      let text = '';
      while (j < sql.length && sql[j] !== c) {
        if (sql[j] === '\\') j++;
        text += sql[j] ?? '';
        j++;
      }
      out.push({ kind: c === "'" ? 'string' : 'quoted', text });
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < sql.length && /[A-Za-z0-9_$]/.test(sql[j] as string)) j++;
      out.push({ kind: 'word', text: sql.slice(i, j) });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i;
      while (j < sql.length && /[0-9A-Za-z_.]/.test(sql[j] as string)) j++;
      out.push({ kind: 'number', text: sql.slice(i, j) });
      i = j;
    } else {
      out.push({ kind: 'punct', text: c });
      i++;
    }
  }
  return out;
}

const isName = (t: Token | undefined) => t !== undefined && (t.kind === 'word' || t.kind === 'quoted');

/** Throws a UserError naming what the query may not read; returns when it reads only `view`. */
export function checkUserSql(sql: string, database: string, view: string): void {
  const tokens = tokenize(sql);
  const first = tokens[0];
  if (first === undefined || first.kind !== 'word' || !/^(select|with)$/i.test(first.text))
    throw new UserError('KAUDIT_QUERY_READONLY', 'only read-only queries are allowed: a SELECT', {
      hint: `query the \`${view}\` view with SELECT`,
    });
  const refuse = (what: string): never => {
    throw new UserError(
      'KAUDIT_QUERY_FORBIDDEN',
      `the query may read only the \`${view}\` view, not ${what}`,
      {
        hint: `query the \`${view}\` view with SELECT ... FROM ${view}`,
      },
    );
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.kind === 'punct' && t.text === ';' && tokens.slice(i + 1).length > 0)
      throw new UserError('KAUDIT_QUERY_INVALID', 'expected one SQL statement');
    if (t.kind !== 'word') continue;
    const word = t.text.toUpperCase();
    const prev = tokens[i - 1];
    // ARRAY JOIN unfolds a column of the rows already read, not a table.
    const arrayJoin = word === 'JOIN' && prev?.kind === 'word' && prev.text.toUpperCase() === 'ARRAY';
    if ((word === 'FROM' || word === 'JOIN') && !arrayJoin) {
      const next = tokens[i + 1];
      if (next?.kind === 'punct' && next.text === '(') continue;
      if (!isName(next)) refuse(`what follows ${word}`);
      const dotted = tokens[i + 2]?.text === '.' && isName(tokens[i + 3]);
      const db = dotted ? next?.text : database;
      const name = dotted ? tokens[i + 3]?.text : next?.text;
      if (db !== database || name !== view || tokens[i + (dotted ? 4 : 2)]?.text === '(')
        refuse(`${dotted ? `${db}.${name}` : name}`);
    } else if (word === 'IN') {
      // `x IN table` reads a table; a list or subquery starts with a parenthesis.
      const next = tokens[i + 1];
      if (!(next?.kind === 'punct' && next.text === '(')) refuse(`IN ${next?.text ?? ''}`);
    } else if (/^(dictGet\w*|dictHas|dictIsIn|joinGet)$/i.test(t.text) && tokens[i + 1]?.text === '(') {
      refuse(`${t.text}() (dictionaries and Join tables)`);
    }
  }
}
