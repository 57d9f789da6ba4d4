import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_TYPES, eventMatches, parseEventFilter } from '../../src/webhooks/events.js';

test('event filters: exact names, prefix wildcards and * are accepted; unknown names are not', () => {
  for (const t of EVENT_TYPES) assert.equal(parseEventFilter(t), t);
  assert.equal(parseEventFilter('deploy.*'), 'deploy.*');
  assert.equal(parseEventFilter('release.*'), 'release.*');
  assert.equal(parseEventFilter('*'), '*');
  for (const bad of ['pushed', 'deploy', 'deploy.', 'nothing.*', 'release.deleted', '', 'push*', '*.created']) {
    assert.equal(parseEventFilter(bad), null, bad);
  }
});

test('eventMatches: a wildcard covers its prefix only', () => {
  assert.ok(eventMatches(['deploy.*'], 'deploy.failed'));
  assert.ok(eventMatches(['deploy.*'], 'deploy.rolled_back'));
  assert.ok(!eventMatches(['deploy.*'], 'push'));
  assert.ok(!eventMatches(['deploy.*'], 'release.created'));
  assert.ok(eventMatches(['push', 'tag.moved'], 'tag.moved'));
  assert.ok(!eventMatches(['push'], 'tag.moved'));
  assert.ok(!eventMatches(['tag.*'], 'push'));
  for (const t of EVENT_TYPES) assert.ok(eventMatches(['*'], t), t);
  assert.ok(!eventMatches([], 'push'));
});
