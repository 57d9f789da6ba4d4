// Wharf-managed secrets: sealed with AES-256-GCM under a key outside the database, bound to their app, environment
// and name; listed by name only; resolved for a deployment from that app and environment alone. Errors name the
// secret and how to set it, never a value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { redact, ManagedSecrets } from '../../src/deploy/secrets.js';
import { SecretBox, SECRET_KEY_FILE } from '../../src/deploy/secret-box.js';
import { parseAppFile } from '../../src/app-file/parse.js';
import { resolveEnvironment } from '../../src/app-file/plan.js';
import { forgetDatabase, onDatabase, openTestStore } from '../support/database.js';

const slot = { app: 'team/web', environment: 'production', name: 'db' };

test('a sealed value opens only with its key and in its own slot; tampering is detected', async () => {
  const box = SecretBox.fromKey(randomBytes(32));
  const sealed = box.seal(slot, 'hunter2');
  assert.ok(!sealed.includes('hunter2'));
  assert.notEqual(box.seal(slot, 'hunter2'), sealed, 'a fresh IV each time');
  assert.equal(box.open(slot, sealed), 'hunter2');
  assert.throws(() => box.open({ ...slot, app: 'other/web' }, sealed), 'another app cannot open it');
  assert.throws(() => box.open({ ...slot, environment: 'staging' }, sealed), 'another environment cannot open it');
  assert.throws(() => SecretBox.fromKey(randomBytes(32)).open(slot, sealed), 'another key cannot open it');
  const raw = Buffer.from(sealed.slice(3), 'base64');
  raw[raw.length - 1]! ^= 1;
  assert.throws(() => box.open(slot, `v1:${raw.toString('base64')}`), 'an altered value is refused');
});

test('the key comes from WHARF_SECRET_KEY, else from a 0600 key file in the data directory, made once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-secret-key-'));
  try {
    const first = await SecretBox.open(dir, {});
    const file = join(dir, SECRET_KEY_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match(await readFile(file, 'utf8'), /^[0-9a-f]{64}\n$/);
    const sealed = first.seal(slot, 'v');
    assert.equal((await SecretBox.open(dir, {})).open(slot, sealed), 'v', 'the same key after a restart');
    const key = randomBytes(32);
    const fromEnv = await SecretBox.open(dir, { WHARF_SECRET_KEY: key.toString('base64') });
    assert.throws(() => fromEnv.open(slot, sealed), 'WHARF_SECRET_KEY wins over the file');
    assert.equal(SecretBox.fromKey(key).open(slot, fromEnv.seal(slot, 'w')), 'w');
    await assert.rejects(SecretBox.open(dir, { WHARF_SECRET_KEY: 'short' }), /WHARF_SECRET_KEY: a secret key is 32 bytes/);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await forgetDatabase(dir);
  }
});

test('managed secrets: stored sealed, listed by name, resolved per app and environment only', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-secrets-'));
  const meta = await openTestStore(join(dir, 'wharf.db'));
  try {
    const store = meta.deployTargets;
    const secrets = new ManagedSecrets(store, SecretBox.fromKey(randomBytes(32)));
    await secrets.set('team/web', 'production', 'db', 'hunter2', 'alice');
    await secrets.set('team/web', 'staging', 'db', 'staging-pw', 'alice');
    await secrets.set('team/other', 'production', 'api', 'other-key', 'bob');
    const rows = await onDatabase(dir, (db) => db.selectFrom('app_secrets').selectAll().execute());
    assert.ok(rows.every((r) => !r.sealed.includes('hunter2') && !JSON.stringify(r).includes('hunter2')), 'nothing in the database holds the value');
    const listed = await secrets.list('team/web');
    assert.deepEqual(listed.map((s) => `${s.environment}/${s.name} by ${s.updatedBy}`), ['production/db by alice', 'staging/db by alice']);
    assert.ok(!JSON.stringify(listed).includes('hunter2') && !JSON.stringify(listed).includes('v1:'), 'a listing carries no value and no ciphertext');

    const plan = (env: string, secretsYaml: string) =>
      resolveEnvironment(parseAppFile(`app: team/web\nenvironments:\n  ${env}:\n    targets: [local]\n    container: { secrets: ${secretsYaml} }\n`), env);
    const resolve = secrets.resolver();
    assert.deepEqual(await resolve(plan('production', '{ DB_PASSWORD: { secret: db } }')), { DB_PASSWORD: 'hunter2' });
    assert.deepEqual(await resolve(plan('staging', '{ DB_PASSWORD: { secret: db } }')), { DB_PASSWORD: 'staging-pw' });
    await assert.rejects(resolve(plan('production', '{ K: { secret: api } }')), {
      message: "secret K: team/web/production has no secret api (set it with 'wharf secret set team/web production api')",
    }, "another app's secret of the same name is not reachable");

    await assert.rejects(secrets.set('team/web', 'production', '../x', 'v', null), /invalid secret name/);
    await assert.rejects(secrets.set('team/web', 'Prod', 'x', 'v', null), /invalid environment name/);
    await assert.rejects(secrets.set('team/web', 'production', 'big', 'x'.repeat(64 * 1024 + 1), null), /at most 64 KiB/);
    await secrets.remove('team/web', 'staging', 'db');
    await assert.rejects(secrets.remove('team/web', 'staging', 'db'), /has no secret db/);
    assert.equal((await secrets.list('team/web', 'staging')).length, 0);
  } finally {
    await meta.close();
    await rm(dir, { recursive: true, force: true });
    await forgetDatabase(dir);
  }
});

test('secret values are blanked out of text headed for records and logs', () => {
  assert.equal(redact('connect failed: password=hunter2 (hunter2)', { DB: 'hunter2', EMPTY: '' }), 'connect failed: password=[secret] ([secret])');
});
