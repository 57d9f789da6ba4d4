// The policy's decisions: roles, user and group grants, token scopes, release per environment, anonymous pull.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Policy, ANONYMOUS, type Identity } from '../../src/auth/policy.js';
import { covers, parseActionList, parseRepositoryScope } from '../../src/auth/actions.js';
import type { TokenRow, UserRow } from '../../src/metadata/auth-store.js';

const user = (name: string, role: 'admin' | 'member' = 'member'): UserRow => ({ name, role, passwordHash: 'x', createdAt: 0, updatedAt: 0, tokenGeneration: 1 });
const token = (id: string, name: string, expiresAt: number | null = null): TokenRow => ({
  id, name, secretHash: 'x', scope: '', createdBy: null, createdAt: 0, expiresAt, revokedAt: null,
});

const policy = new Policy({
  users: [user('root', 'admin'), user('alice'), user('bob'), user('carol')],
  tokens: [token('t1', 'ci'), token('t2', 'old', Date.now() - 1000)],
  memberships: [{ group: 'team-a', user: 'bob' }],
  grants: [
    { subjectKind: 'user', subject: 'alice', pattern: 'team-a/*', action: 'pull' },
    { subjectKind: 'group', subject: 'team-a', pattern: 'team-a/*', action: 'push' },
    { subjectKind: 'user', subject: 'carol', pattern: 'shop', action: 'release:staging' },
    { subjectKind: 'user', subject: 'carol', pattern: 'infra/*', action: 'admin' },
    { subjectKind: 'token', subject: 't1', pattern: 'myapp/*', action: 'pull' },
    { subjectKind: 'token', subject: 't1', pattern: 'myapp/*', action: 'push' },
    { subjectKind: 'token', subject: 't2', pattern: '*', action: 'pull' },
  ],
  anonymousPull: ['public/*'],
});

const alice: Identity = { kind: 'user', name: 'alice' };
const bob: Identity = { kind: 'user', name: 'bob' };
const carol: Identity = { kind: 'user', name: 'carol' };
const ci: Identity = { kind: 'token', id: 't1', name: 'ci' };

test('the admin role may do everything, registry-wide too', () => {
  const root: Identity = { kind: 'user', name: 'root' };
  for (const a of ['pull', 'push', 'delete', 'release', 'admin'] as const) assert.ok(policy.allows(root, 'any/repo', a));
  assert.ok(policy.allows(root, undefined, 'admin'));
});

test('user grants apply to matching repositories only, and only for their actions', () => {
  assert.ok(policy.allows(alice, 'team-a/app', 'pull'));
  assert.ok(policy.allows(alice, 'team-a/nested/app', 'pull'), '* spans slashes');
  assert.ok(!policy.allows(alice, 'team-a/app', 'push'));
  assert.ok(!policy.allows(alice, 'team-b/app', 'pull'));
  assert.ok(!policy.allows(alice, 'team-a', 'pull'), 'team-a/* does not cover team-a itself');
  assert.ok(!policy.allows(alice, undefined, 'admin'));
});

test('group grants reach their members only', () => {
  assert.ok(policy.allows(bob, 'team-a/app', 'push'));
  assert.ok(!policy.allows(alice, 'team-a/app', 'push'));
});

test('release can be narrowed to one environment; admin on a pattern covers everything there', () => {
  assert.ok(policy.allows(carol, 'shop', 'release', 'staging'));
  assert.ok(!policy.allows(carol, 'shop', 'release', 'production'));
  assert.ok(!policy.allows(carol, 'shop', 'release'), 'an environment grant is not a general release grant');
  assert.ok(policy.allows(carol, 'infra/dns', 'delete'));
  assert.ok(policy.allows(carol, 'infra/dns', 'release', 'production'));
  assert.ok(!policy.allows(carol, undefined, 'admin'), 'admin on infra/* is not registry-wide admin');
});

test('tokens get exactly their scopes; expired and unknown tokens nothing', () => {
  assert.ok(policy.allows(ci, 'myapp/web', 'push'));
  assert.ok(!policy.allows(ci, 'myapp/web', 'delete'));
  assert.ok(!policy.allows(ci, 'other', 'pull'));
  assert.ok(!policy.allows({ kind: 'token', id: 't2', name: 'old' }, 'myapp/web', 'pull'), 'expired');
  assert.ok(!policy.allows({ kind: 'token', id: 'gone', name: 'ci' }, 'myapp/web', 'pull'), 'revoked (not loaded)');
  assert.ok(!policy.allows({ kind: 'user', name: 'mallory' }, 'team-a/app', 'pull'), 'removed user');
});

test('anonymous callers may pull the configured patterns and never anything else', () => {
  assert.ok(policy.allows(ANONYMOUS, 'public/base', 'pull'));
  assert.ok(!policy.allows(ANONYMOUS, 'public/base', 'push'));
  assert.ok(!policy.allows(ANONYMOUS, 'team-a/app', 'pull'));
  assert.ok(!policy.allows(ANONYMOUS, undefined, 'pull'));
  const closed = new Policy({ users: [], tokens: [], memberships: [], grants: [], anonymousPull: [] });
  assert.ok(!closed.allows(ANONYMOUS, 'public/base', 'pull'), 'anonymous pull is off by default');
});

test('scopes and action lists parse, release environments included; junk is refused', () => {
  assert.deepEqual(parseRepositoryScope('repository:myapp/*:pull,push'), { pattern: 'myapp/*', actions: ['pull', 'push'] });
  assert.deepEqual(parseRepositoryScope('repository:shop:release:staging,pull'), { pattern: 'shop', actions: ['release:staging', 'pull'] });
  assert.deepEqual(parseActionList('*'), ['pull', 'push', 'delete', 'release', 'admin']);
  assert.throws(() => parseRepositoryScope('registry:catalog:*'), /invalid scope/);
  assert.throws(() => parseRepositoryScope('repository:My App:pull'), /invalid scope/);
  assert.throws(() => parseActionList('pull,write'), /unknown action "write"/);
  assert.throws(() => parseActionList('release:'), /unknown action/);
  assert.ok(covers('release', 'release', 'production'));
  assert.ok(!covers('release:staging', 'release'));
  assert.ok(!covers('pull', 'push'));
});
