// Hot read paths (manifest GET, blob GET, tags/list) run the same few queries thousands of times a second.
// Building and compiling a Kysely query costs more than SQLite answering it, so these are compiled once
// with placeholder values and later calls only bind their parameters. Each carries a tag, `/* wharf:NAME */`,
// under which PostgreSQL keeps it prepared on every connection (postgres.ts) and the round trips are counted
// (round-trips.ts); SQLite ignores the comment (and keeps every statement prepared anyway, sqlite.ts).
import type { Compilable, CompiledQuery, Kysely } from 'kysely';
import type { Db } from './database.js';

const SENTINEL = '\u0000wharf-param-';

/** A compiled query: called with its arguments on the database, or `.on(trx)` within a transaction. */
export interface Precompiled<Args extends (string | number)[], Row> {
  (...args: Args): Promise<Row[]>;
  on(db: Db, ...args: Args): Promise<Row[]>;
}

export function precompile<Args extends (string | number)[], Row>(
  db: Kysely<any>,
  name: string,
  build: (...args: Args) => Compilable<Row>,
  arity: Args['length'],
): Precompiled<Args, Row> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`a precompiled query's name is lower-case words: ${name}`);
  let compiled: CompiledQuery<Row> | undefined;
  let slots: (number | -1)[] = [];
  const run = async (on: Db, args: Args) => {
    if (!compiled) {
      const placeholders = Array.from({ length: arity }, (_, i) => `${SENTINEL}${i}`) as Args;
      const plain = build(...placeholders).compile();
      compiled = { ...plain, sql: `/* wharf:${name} */ ${plain.sql}` };
      slots = compiled.parameters.map((p) => (typeof p === 'string' && p.startsWith(SENTINEL) ? Number(p.slice(SENTINEL.length)) : -1));
    }
    const parameters = compiled.parameters.map((p, i) => (slots[i]! >= 0 ? args[slots[i]!] : p));
    const result = await on.executeQuery<Row>({ ...compiled, parameters });
    return result.rows;
  };
  return Object.assign((...args: Args) => run(db, args), { on: (on: Db, ...args: Args) => run(on, args) });
}
