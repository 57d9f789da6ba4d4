// Bounds the blob bytes this process writes to sockets in one turn of the event loop, so a pull storm keeps the
// turns short.
//
// Why: libuv accepts one new connection per turn (one accept(2) per poll of the listening socket, however many
// wait in its queue), and a request is read only once its connection is accepted. Unbounded, one turn of a pull
// storm writes a chunk for every response whose socket has room: with 96 responses, 10–30 ms of copying into
// sockets per turn, so the clients that connected last waited in the kernel's accept queue for up to a second
// (`ss -ltn` showed 60–70 connections queued for hundreds of milliseconds; `strace` one accept4 per 10–20 ms) while
// the first ones were served — and every extra round trip a client makes before its layers (a logged-in client's
// GET /token) costs it another long turn. With the budget, writes beyond it wait for the next turn, after the
// loop has polled again (accepted the next connection, read new requests): a turn stays around a millisecond.
// The bytes still go out in the order they were asked for; a turn's overhead (one poll) is a few microseconds.

/** Bytes per turn: four 512 KiB chunks, roughly a millisecond of copying into loopback sockets on this hardware. */
export const DEFAULT_BYTES_PER_TURN = 2 * 1024 * 1024;

export class TurnBudget {
  /** bytes let through since the turn began */
  private spent = 0;
  /** an immediate is set to begin the next turn */
  private ending = false;
  /** writes waiting for a later turn, in the order they asked */
  private readonly waiting: { bytes: number; go: () => void }[] = [];
  /** writes that waited for a later turn (how often the budget held a write back) */
  deferred = 0;

  constructor(readonly bytesPerTurn = DEFAULT_BYTES_PER_TURN) {}

  /**
   * Leave to write `bytes` now (undefined), or a promise resolved on a later turn of the loop. A write larger
   * than the whole budget still goes, alone in its turn.
   */
  take(bytes: number): Promise<void> | undefined {
    this.endTurnSoon();
    if (this.waiting.length === 0 && this.spent < this.bytesPerTurn) {
      this.spent += bytes;
      return undefined;
    }
    this.deferred++;
    return new Promise((go) => this.waiting.push({ bytes, go }));
  }

  /** The check phase ends this turn: setImmediate runs after the loop's poll, and one set inside it after the next poll. */
  private endTurnSoon(): void {
    if (this.ending) return;
    this.ending = true;
    setImmediate(this.nextTurn);
  }

  private readonly nextTurn = (): void => {
    this.ending = false;
    this.spent = 0;
    while (this.waiting.length > 0 && this.spent < this.bytesPerTurn) {
      const next = this.waiting.shift()!;
      this.spent += next.bytes;
      next.go();
    }
    // Those still waiting go in a later turn; what this one let through counts against the poll that follows.
    if (this.waiting.length > 0) this.endTurnSoon();
  };
}
