// The Kysely handle every store of this folder queries, and how a unit of work's Tx maps onto it: the one
// place that knows a Tx is a Kysely transaction.
import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { Tx } from './transaction.js';

/** The database, or an open transaction on it. */
export type Db = Kysely<Database> | Transaction<Database>;

/** Where a store call runs: in the caller's transaction when it passes one, else on the database. */
export function within(db: Kysely<Database>, tx: Tx | undefined): Db {
  return tx === undefined ? db : (tx as unknown as Transaction<Database>);
}

/** A Kysely transaction as the unit of work's Tx (a store method that runs inside one, handing it to a callback). */
export function asTx(trx: Db): Tx {
  return trx as unknown as Tx;
}

/** Runs `work` in a new transaction. */
export function inTransaction<T>(db: Kysely<Database>, work: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction().execute((trx) => work(asTx(trx)));
}
