// Hot read paths (manifest GET, blob GET, tags/list) run the same few queries thousands of times a second.
// Building and compiling a Kysely query costs more than SQLite answering it, so these are compiled once
// with placeholder values and later calls only bind their parameters.
import type { Compilable, CompiledQuery, Kysely } from 'kysely';

const SENTINEL = '\u0000wharf-param-';

export function precompile<Args extends (string | number)[], Row>(
  db: Kysely<any>,
  build: (...args: Args) => Compilable<Row>,
  arity: Args['length'],
): (...args: Args) => Promise<Row[]> {
  let compiled: CompiledQuery<Row> | undefined;
  let slots: (number | -1)[] = [];
  return async (...args: Args) => {
    if (!compiled) {
      const placeholders = Array.from({ length: arity }, (_, i) => `${SENTINEL}${i}`) as Args;
      compiled = build(...placeholders).compile();
      slots = compiled.parameters.map((p) => (typeof p === 'string' && p.startsWith(SENTINEL) ? Number(p.slice(SENTINEL.length)) : -1));
    }
    const parameters = compiled.parameters.map((p, i) => (slots[i]! >= 0 ? args[slots[i]!] : p));
    const result = await db.executeQuery<Row>({ ...compiled, parameters });
    return result.rows;
  };
}
