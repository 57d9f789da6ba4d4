// The turn budget: blob writes beyond a turn's bytes wait for a later turn of the event loop (after it has polled
// for I/O again), in the order they asked, and a write larger than the budget still goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { TurnBudget } from '../../src/server/turn-budget.js';

test('writes within the budget go at once; the rest go on later turns, in order, a budget at a time', async () => {
  const turns = new TurnBudget(100);
  assert.equal(turns.take(60), undefined);
  assert.equal(turns.take(60), undefined, 'the write that crosses the budget still goes');
  const order: string[] = [];
  const later = ['a', 'b', 'c', 'd'].map((name) => turns.take(50)!.then(() => order.push(name)));
  assert.equal(turns.take(1) instanceof Promise, true, 'a small write does not jump the queue');
  await Promise.resolve();
  assert.deepEqual(order, [], 'nothing beyond the budget goes in the same turn');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a', 'b'], 'the next turn lets a budget through');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  await Promise.all(later);
  assert.equal(turns.deferred, 5);
});

test('a write larger than the whole budget goes alone in its turn', async () => {
  const turns = new TurnBudget(10);
  const order: number[] = [];
  assert.equal(turns.take(1_000), undefined);
  const waits = [500, 5].map((n) => turns.take(n)!.then(() => order.push(n)));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [500]);
  await Promise.all(waits);
  assert.deepEqual(order, [500, 5]);
});

test('while writes wait for their turns, the loop polls: a connection made meanwhile is accepted before they all go', async () => {
  // libuv accepts one connection per poll: with every write let through in one long turn, a client connecting
  // during a pull storm waits for the turn to end. Here 200 writes of one budget each take 200 turns, and a
  // connection made at the start is accepted long before the last of them.
  const turns = new TurnBudget(1);
  const server = createServer((socket: Socket) => socket.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    let went = 0;
    const writes = Array.from({ length: 200 }, () => {
      const turn = turns.take(1);
      if (turn === undefined) went++;
      return turn?.then(() => went++);
    });
    const { port } = server.address() as { port: number };
    const accepted = once(server, 'connection').then(() => went);
    const client = connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    const wentWhenAccepted = await accepted;
    assert.ok(wentWhenAccepted < 100, `accepted after ${wentWhenAccepted} of the 200 writes`);
    await Promise.all(writes);
    client.destroy();
  } finally {
    server.close();
  }
});
