// Counts the statements the metadata store sends to its database, by statement: on PostgreSQL each one is a network
// round trip (BEGIN and COMMIT included), so this is what a request costs the database and what limits how many
// instances one PostgreSQL can carry. /metrics exposes it (wharf_db_queries_total); the bench reads it per request.

/** `/* wharf:NAME *\/ select …`: the tag a hot query carries (precompiled.ts); PostgreSQL prepares it under NAME. */
const TAGGED = /^\/\* wharf:([a-z0-9_]+) \*\//;

/** The name a statement is counted under: its tag when it has one, else its first keyword (select, insert, begin …). */
export function statementName(sql: string): string {
  const tag = TAGGED.exec(sql)?.[1];
  if (tag !== undefined) return tag;
  const keyword = /^\s*([a-zA-Z]+)/.exec(sql)?.[1];
  return keyword === undefined ? 'other' : keyword.toLowerCase();
}

/** A hot query's tag, or undefined: what PostgreSQL names a prepared statement after. */
export function statementTag(sql: string): string | undefined {
  return sql.charCodeAt(0) === 47 /* '/' */ ? TAGGED.exec(sql)?.[1] : undefined;
}

export class RoundTrips {
  private readonly counts = new Map<string, number>();
  private sum = 0;

  constructor(readonly backend: 'sqlite' | 'postgres') {}

  /** One statement sent, counted under `statement` (a statementName). */
  count(statement: string): void {
    this.counts.set(statement, (this.counts.get(statement) ?? 0) + 1);
    this.sum++;
  }

  /** Statements sent since the store opened. */
  get total(): number {
    return this.sum;
  }

  /** Statements sent since the store opened, by statement name. */
  byStatement(): ReadonlyMap<string, number> {
    return this.counts;
  }
}
