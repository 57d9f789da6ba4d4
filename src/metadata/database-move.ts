// Moving an installation's metadata from its SQLite file into an empty PostgreSQL database (`wharf migrate-db`):
// every table copied in the order its foreign keys need, the id sequences moved past the copied ids, then every row
// read back from both sides and compared.
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { openPostgres, redactedUrl } from './postgres.js';
import { openSqlite } from './sqlite.js';

/** Kysely's own bookkeeping: each side has its own (both at the same migrations once opened). */
const BOOKKEEPING = new Set(['kysely_migration', 'kysely_migration_lock']);
const BATCH = 500;

export class DatabaseMoveError extends Error {}

export interface MovedTable {
  table: string;
  rows: number;
}

interface TableShape {
  name: string;
  columns: string[];
  /** primary key columns in key order (every column when the table has none): the order both sides are read in */
  order: string[];
  references: string[];
}

const INT8 = 20;
const NUMERIC = 1700;
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 || oid === NUMERIC ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Copies every table of the SQLite database `sqliteFile` into the PostgreSQL database at `url` and verifies them.
 * Both are migrated first (to this version's schema); a target holding any row is refused before anything is written.
 * The copy is one transaction: on any failure the target stays empty.
 */
export async function moveSqliteToPostgres(sqliteFile: string, url: string, progress: (t: MovedTable) => void = () => {}): Promise<MovedTable[]> {
  await (await openSqlite(sqliteFile)).close();
  await (await openPostgres(url, { poolSize: 1, migrate: true })).close();
  const source = new BetterSqlite3(sqliteFile, { readonly: true, fileMustExist: true });
  const target = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1, types }) }) });
  try {
    const tables = orderByReferences(sqliteTables(source));
    const targetTables = new Set(
      (await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(target)).rows.map(
        (r) => r.table_name,
      ),
    );
    const missing = tables.filter((t) => !targetTables.has(t.name)).map((t) => t.name);
    if (missing.length > 0) throw new DatabaseMoveError(`${redactedUrl(url)} has no table ${missing.join(', ')}: not Wharf's schema of this version`);
    for (const t of tables) {
      const { rows } = await sql<{ n: number }>`select count(*) as n from ${sql.table(t.name)}`.execute(target);
      if (Number(rows[0]!.n) > 0) throw new DatabaseMoveError(`${redactedUrl(url)} is not empty (table ${t.name} has rows): moving needs an empty database`);
    }
    const moved: MovedTable[] = [];
    await target.transaction().execute(async (tx) => {
      for (const t of tables) {
        const select = source.prepare(`select ${t.columns.map(quote).join(', ')} from ${quote(t.name)} order by ${t.order.map(quote).join(', ')}`);
        let batch: Record<string, unknown>[] = [];
        let rows = 0;
        for (const row of select.iterate() as Iterable<Record<string, unknown>>) {
          batch.push(row);
          if (batch.length === BATCH) {
            await tx.insertInto(t.name).values(batch).execute();
            rows += batch.length;
            batch = [];
          }
        }
        if (batch.length > 0) await tx.insertInto(t.name).values(batch).execute();
        rows += batch.length;
        if (t.columns.includes('id')) {
          // The next id PostgreSQL hands out follows the copied ones (serial columns only; a text id has no sequence).
          const { rows: seq } = await sql<{ seq: string | null }>`select pg_get_serial_sequence(${t.name}, 'id') as seq`.execute(tx);
          if (seq[0]?.seq) {
            await sql`select setval(${seq[0].seq}::regclass, coalesce(max(id), 1), max(id) is not null) from ${sql.table(t.name)}`.execute(tx);
          }
        }
        moved.push({ table: t.name, rows });
      }
    });
    for (const t of tables) {
      await verifyTable(source, target, t);
      progress(moved.find((m) => m.table === t.name)!);
    }
    return moved;
  } finally {
    source.close();
    await target.destroy();
  }
}

/** Reads the table from both sides in the same order and compares every row, column by column. */
async function verifyTable(source: BetterSqlite3.Database, target: Kysely<any>, t: TableShape): Promise<void> {
  const cols = t.columns.map(quote).join(', ');
  // Text keys in byte order on both sides (SQLite's BINARY collation is PostgreSQL's "C").
  const textual = new Set(
    (await sql<{ column_name: string; data_type: string }>`select column_name, data_type from information_schema.columns where table_schema = current_schema() and table_name = ${t.name}`.execute(target)).rows
      .filter((r) => r.data_type === 'text' || r.data_type.startsWith('character'))
      .map((r) => r.column_name),
  );
  const pgOrderBy = t.order.map((c) => (textual.has(c) ? `${quote(c)} collate "C"` : quote(c))).join(', ');
  const expected = source.prepare(`select ${cols} from ${quote(t.name)} order by ${t.order.map(quote).join(', ')}`).iterate() as IterableIterator<Record<string, unknown>>;
  let offset = 0;
  let index = 0;
  for (;;) {
    const { rows } = await sql<Record<string, unknown>>`select ${sql.raw(cols)} from ${sql.table(t.name)} order by ${sql.raw(pgOrderBy)} limit ${BATCH} offset ${offset}`.execute(target);
    for (const got of rows) {
      const want = expected.next();
      if (want.done) throw new DatabaseMoveError(`verification failed: ${t.name} has more rows in PostgreSQL than in SQLite`);
      for (const c of t.columns) {
        if (!sameValue(want.value[c], got[c])) {
          throw new DatabaseMoveError(`verification failed: ${t.name} row ${index + 1}, column ${c}: ${show(want.value[c])} in SQLite, ${show(got[c])} in PostgreSQL`);
        }
      }
      index++;
    }
    if (rows.length < BATCH) break;
    offset += BATCH;
  }
  if (!expected.next().done) throw new DatabaseMoveError(`verification failed: ${t.name} has fewer rows in PostgreSQL than in SQLite`);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === null || a === undefined) return b === null || b === undefined;
  if (Buffer.isBuffer(a)) return Buffer.isBuffer(b) && a.equals(b);
  if (typeof a === 'bigint' || typeof a === 'number') return (typeof b === 'number' || typeof b === 'bigint' || typeof b === 'string') && String(a) === String(b);
  return a === b;
}

function show(v: unknown): string {
  return Buffer.isBuffer(v) ? `<${v.length} bytes>` : JSON.stringify(v);
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function sqliteTables(db: BetterSqlite3.Database): TableShape[] {
  const names = (db.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`).all() as { name: string }[])
    .map((r) => r.name)
    .filter((n) => !BOOKKEEPING.has(n));
  return names.map((name) => {
    const info = db.prepare(`select name, pk from pragma_table_info(?) order by cid`).all(name) as { name: string; pk: number }[];
    const keys = info.filter((c) => c.pk > 0).sort((x, y) => x.pk - y.pk).map((c) => c.name);
    const references = (db.prepare(`select "table" from pragma_foreign_key_list(?)`).all(name) as { table: string }[]).map((r) => r.table).filter((r) => r !== name);
    const columns = info.map((c) => c.name);
    return { name, columns, order: keys.length > 0 ? keys : columns, references };
  });
}

/** Referenced tables before the tables referencing them (a row's own table, e.g. a release replacing another, copies in id order). */
function orderByReferences(tables: TableShape[]): TableShape[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const out: TableShape[] = [];
  const placed = new Set<string>();
  const visit = (t: TableShape, path: Set<string>) => {
    if (placed.has(t.name)) return;
    if (path.has(t.name)) throw new DatabaseMoveError(`tables reference each other in a circle through ${t.name}`);
    path.add(t.name);
    for (const r of t.references) {
      const dep = byName.get(r);
      if (dep) visit(dep, path);
    }
    path.delete(t.name);
    placed.add(t.name);
    out.push(t);
  };
  for (const t of tables) visit(t, new Set());
  return out;
}
