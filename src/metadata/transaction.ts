// The unit of work: writes of several concerns (a release row, its environment's tag move, an outbox row)
// committed together or not at all, without the domain seeing the database or its driver.

declare const openTransaction: unique symbol;

/**
 * An open transaction. Domain code only hands it back to the store methods that take one (their `tx`
 * parameter); what it is inside is the backend's business.
 */
export interface Tx {
  readonly [openTransaction]: true;
}

export interface UnitOfWork {
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws (the error is
   * rethrown). Store calls given `tx` take part in it; store calls without one do not.
   */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
}
