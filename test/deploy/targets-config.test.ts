// Deploy targets in the server config file: validated with the same schema as the API's, registered at start,
// owned by the file (the API cannot change them), and gone once the file no longer lists them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { openWharf } from '../../src/wharf.js';
import { databaseEnv, forgetDatabase } from '../support/database.js';

test('targets of the config file are registered at start, owned by the file, and dropped with it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-targets-config-'));
  const file = join(dir, 'wharf.yaml');
  const open = async (yaml: string) => {
    await writeFile(file, yaml);
    return openWharf(loadConfig({ flags: { data: join(dir, 'data'), config: file }, env: await databaseEnv(join(dir, 'data')) }));
  };
  try {
    let wharf = await open('targets:\n  - { name: web-1, endpoint: "tcp://10.0.0.5:2376", apps: ["team/*"], allow: [bind-mounts] }\n');
    await wharf.targets.add({ name: 'by-api', endpoint: 'unix:///x.sock', apps: ['ops/*'] }, 'admin');
    assert.deepEqual((await wharf.targets.list()).map((t) => [t.name, t.source, t.allow.join(',')]), [['by-api', 'api', ''], ['web-1', 'config', 'bind-mounts']]);
    await assert.rejects(wharf.targets.add({ name: 'web-1', endpoint: 'unix:///x.sock', apps: ['*'], allow: ['privileged'] }, 'admin'), /comes from the server config file/);
    await assert.rejects(wharf.targets.remove('web-1'), /comes from the server config file/);
    await wharf.close();

    wharf = await open('targets: []\n');
    assert.deepEqual((await wharf.targets.list()).map((t) => t.name), ['by-api'], "the file's target went with it; the API's stays");
    await wharf.close();

    await writeFile(file, 'targets:\n  - { name: w, endpoint: "unix:///s", apps: ["x"], allow: [root] }\n');
    assert.throws(() => loadConfig({ flags: { data: join(dir, 'data'), config: file }, env: {} }), /targets\.0\.allow\.0/);
    await writeFile(file, 'targets:\n  - { name: w, endpoint: "unix:///s", apps: ["x"] }\n  - { name: w, endpoint: "unix:///t", apps: ["y"] }\n');
    assert.throws(() => loadConfig({ flags: { data: join(dir, 'data'), config: file }, env: {} }), /target names must be unique/);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await forgetDatabase(join(dir, 'data'));
  }
});
