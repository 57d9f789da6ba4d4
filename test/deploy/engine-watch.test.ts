// Which environments an engine event concerns, with event streams in memory: container events by the app and
// environment labels Wharf puts on its containers, Swarm service events by the service's name; one stream per
// target whatever the number of environments on it; a stream that comes back makes every environment on its target
// looked at; a target no environment uses any more is closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineWatch, type EnvironmentKey } from '../../src/deploy/engine-watch.js';
import type { EngineEvent, EngineEvents, EventFilters, EventListener } from '../../src/engine/engine-events.js';
import type { ConnectionSpec } from '../../src/engine/connection.js';

class MemoryEvents {
  readonly open: { endpoint: string; filters: EventFilters; listener: EventListener; closed: boolean }[] = [];
  events(target: ConnectionSpec): EngineEvents {
    return {
      endpoint: target.endpoint,
      watch: (filters, listener) => {
        const w = { endpoint: target.endpoint, filters, listener, closed: false };
        this.open.push(w);
        return { close: () => void (w.closed = true) };
      },
    };
  }
  live(endpoint: string, type: 'container' | 'service') {
    return this.open.filter((w) => !w.closed && w.endpoint === endpoint && w.filters.type.includes(type));
  }
  emit(endpoint: string, e: Omit<EngineEvent, 'time' | 'id'>) {
    for (const w of this.live(endpoint, e.type)) w.listener.event({ ...e, id: 'x', time: Date.now() });
  }
}

const quiet = { info: () => {}, warn: () => {} };
const target = (name: string) => ({ name, endpoint: `unix:///${name}.sock` });

test('events reach the environments they concern, and only those', () => {
  const engines = new MemoryEvents();
  const seen: string[] = [];
  const state = new Map<string, boolean>();
  const watch = new EngineWatch(engines, (env: EnvironmentKey, why) => seen.push(`${env.app}/${env.environment}: ${why}`), quiet, state);
  watch.update([
    { app: 'shop/web', environment: 'production', targets: [target('h1'), target('h2')] },
    { app: 'shop/web', environment: 'staging', targets: [target('h1')] },
    { app: 'api', environment: 'production', targets: [target('mgr')], service: 'api-prod' },
  ]);
  // One container stream per target, with the label filter; the manager has a service stream too.
  assert.equal(engines.live('unix:///h1.sock', 'container').length, 1);
  assert.deepEqual(engines.live('unix:///h1.sock', 'container')[0]!.filters.label, ['wharf.app']);
  assert.equal(engines.live('unix:///h1.sock', 'service').length, 0);
  assert.equal(engines.live('unix:///mgr.sock', 'service').length, 1);

  engines.emit('unix:///h1.sock', { type: 'container', action: 'destroy', attributes: { 'wharf.app': 'shop/web', 'wharf.env': 'staging', name: 'c1' } });
  engines.emit('unix:///h2.sock', { type: 'container', action: 'die', attributes: { 'wharf.app': 'shop/web', 'wharf.env': 'staging' } });
  engines.emit('unix:///h1.sock', { type: 'container', action: 'die', attributes: { 'wharf.app': 'other', 'wharf.env': 'production' } });
  engines.emit('unix:///mgr.sock', { type: 'service', action: 'update', attributes: { name: 'api-prod' } });
  engines.emit('unix:///mgr.sock', { type: 'service', action: 'update', attributes: { name: 'someone-else' } });
  assert.deepEqual(seen, ['shop/web/staging: container destroy (c1) on h1', 'api/production: service update (api-prod) on mgr']);

  // Back after a drop: every environment of that target, since what happened meanwhile may be lost.
  seen.length = 0;
  const [h1] = engines.live('unix:///h1.sock', 'container');
  h1!.listener.connected(false);
  assert.equal(state.get('h1'), true);
  h1!.listener.lost(new Error('EOF'));
  assert.equal(state.get('h1'), false);
  assert.deepEqual(watch.counts(), { connected: 0, down: 3 });
  h1!.listener.connected(true);
  assert.deepEqual(seen.sort(), ['shop/web/production: the event stream of h1 came back', 'shop/web/staging: the event stream of h1 came back']);

  // Staging leaves h1, production leaves h2: h2 is closed, h1 stays open (the same stream) for production alone.
  seen.length = 0;
  watch.update([{ app: 'shop/web', environment: 'production', targets: [target('h1')] }]);
  assert.equal(engines.live('unix:///h2.sock', 'container').length, 0);
  assert.equal(engines.live('unix:///mgr.sock', 'service').length, 0);
  assert.deepEqual(engines.live('unix:///h1.sock', 'container'), [h1]);
  engines.emit('unix:///h1.sock', { type: 'container', action: 'stop', attributes: { 'wharf.app': 'shop/web', 'wharf.env': 'staging' } });
  assert.deepEqual(seen, []);
  // A target registered again elsewhere is a new stream.
  watch.update([{ app: 'shop/web', environment: 'production', targets: [{ name: 'h1', endpoint: 'tcp://10.0.0.9:2376' }] }]);
  assert.equal(engines.live('unix:///h1.sock', 'container').length, 0);
  assert.equal(engines.live('tcp://10.0.0.9:2376', 'container').length, 1);
  watch.stop();
  assert.equal(engines.open.filter((w) => !w.closed).length, 0);
  assert.equal(state.size, 0);
});
