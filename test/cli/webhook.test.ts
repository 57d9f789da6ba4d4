// `wharf webhook …` against a running server (a real `wharf serve` process) with a real receiver on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../support/registry-client.js';
import { runWharf, startWharf, withLogsOnFailure } from '../support/server.js';
import { eventually, startReceiver } from '../webhooks/receiver.js';

/** Pushes a one-layer image over the registry API and returns its manifest digest. */
async function pushImage(base: string, auth: string, repo: string, tag: string, seed: string): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer ${seed}`);
  for (const blob of [config, layer]) {
    const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { authorization: auth } });
    assert.equal(res.status, 201, await res.text());
  }
  const descriptor = (b: Buffer, mediaType: string) => ({ mediaType, digest: sha256(b), size: b.length });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: descriptor(config, 'application/vnd.oci.image.config.v1+json'),
    layers: [descriptor(layer, 'application/vnd.oci.image.layer.v1.tar')],
  });
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { authorization: auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(res.status, 201, await res.text());
  return sha256(manifest);
}

test('wharf webhook add, list, deliveries, delivery, redeliver and remove', { timeout: 60_000 }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'wharf-webhook-cli-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const configFile = join(work, 'wharf.yaml');
  await writeFile(configFile, 'webhooks:\n  backoffBase: 50ms\n  backoffMax: 200ms\n  pollInterval: 200ms\n');
  const receiver = await startReceiver((n) => (n <= 2 ? 500 : 200));
  t.after(() => receiver.close());
  const server = await startWharf({ args: ['--config', configFile] });
  t.after(() => server.stop());
  const env = { ...process.env, WHARF_SERVER: server.url, WHARF_CONFIG_DIR: join(work, 'cli') } as Record<string, string>;
  delete env.WHARF_TOKEN;
  const wharf = (args: string[], input?: string) => runWharf(['webhook', ...args], { env, input });
  const ok = async (args: string[], input?: string) => {
    const r = await wharf(args, input);
    assert.equal(r.code, 0, `wharf webhook ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };

  const basic = server.authorization;

  await withLogsOnFailure(server, async () => {
    const login = await runWharf(['login', server.url, '-u', server.admin.username, '--password-stdin'], { env, input: server.admin.password });
    assert.equal(login.code, 0, login.stderr);
    const added = await ok(['add', receiver.url, '--events', 'push,tag.moved', '--secret-stdin', '--repo', 'team/*'], 'cli-secret-123\n');
    const id = Number(/^webhook (\d+) added: push, tag\.moved of team\/\* → /.exec(added)?.[1]);
    assert.ok(id > 0, added);
    assert.ok(!added.includes('cli-secret-123'));

    const generated = JSON.parse(await ok(['add', 'http://127.0.0.1:9/unused', '--events', 'deploy.*', '--json']));
    assert.match(generated.secret, /^[0-9a-f]{64}$/, 'a generated secret is printed once');

    const refused = await wharf(['add', receiver.url, '--events', 'push,pushed']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^wharf webhook: events\.1: unknown event "pushed" \(known: push, /);
    assert.equal(refused.stderr.trim().split('\n').length, 1, 'a plain one-line error');
    assert.equal((await wharf(['add', receiver.url])).code, 2, 'missing --events is a usage error');

    const listed = JSON.parse(await ok(['list', '--json']));
    assert.deepEqual(
      listed.map((s: { id: number; events: string[]; repository: string | null }) => [s.id, s.events, s.repository]),
      [
        [id, ['push', 'tag.moved'], 'team/*'],
        [generated.id, ['deploy.*'], null],
      ],
    );
    const table = await ok(['list']);
    assert.match(table, /^ID\s+URL\s+EVENTS\s+REPOSITORY\s+CREATED\n/);
    assert.ok(table.includes(receiver.url));
    for (const out of [JSON.stringify(listed), table]) assert.ok(!out.includes('cli-secret-123') && !out.includes(generated.secret), 'no secret in listings');

    const first = await pushImage(server.url, basic, 'team/app', 'latest', 'one');
    const second = await pushImage(server.url, basic, 'team/app', 'latest', 'two');
    await pushImage(server.url, basic, 'other/app', 'latest', 'three');

    // push, push, tag.moved; the receiver refuses the first two requests, so some are retried.
    type Row = { id: string; event: string; status: string; attempts: number };
    await eventually(async () => {
      const res = await fetch(`${server.url}/api/v1/webhooks/deliveries?subscription=${id}`, { headers: { authorization: basic } });
      const ds = (await res.json()) as Row[];
      return ds.length === 3 && ds.every((d) => d.status === 'succeeded') ? true : undefined;
    }, 'three succeeded deliveries', 10_000);
    const deliveries = JSON.parse(await ok(['deliveries', '--id', String(id), '--json'])) as Row[];
    assert.deepEqual(deliveries.map((d) => d.event).sort(), ['push', 'push', 'tag.moved']);
    assert.equal(deliveries.reduce((n, d) => n + d.attempts, 0), 5, 'two failed attempts were retried');
    assert.equal(receiver.received.length, 5);
    const successes = receiver.received.filter((r) => r.status === 200);
    assert.deepEqual(new Set(successes.map((r) => r.headers['x-wharf-delivery'])), new Set(deliveries.map((d) => d.id)), 'each delivered once');
    for (const r of receiver.received) assert.equal(r.headers['x-wharf-signature-256'], 'sha256=' + createHmac('sha256', 'cli-secret-123').update(r.raw).digest('hex'));
    const moved = successes.find((r) => r.headers['x-wharf-event'] === 'tag.moved')!.body;
    assert.deepEqual([moved.repository, moved.tag, moved.from, moved.to], ['team/app', 'latest', first, second]);

    const retried = deliveries.find((d) => d.attempts > 1)!;
    const shown = await ok(['delivery', retried.id]);
    assert.match(shown, new RegExp(`^delivery ${retried.id}: ${retried.event.replace('.', '\\.')} of team/app to webhook ${id}, succeeded after ${retried.attempts} attempt`));
    assert.match(shown, /\n1\s+\S+\s+500\s+\d+\s+HTTP 500: receiver says no/);
    const deliveriesTable = await ok(['deliveries']);
    assert.match(deliveriesTable, /^DELIVERY\s+WEBHOOK\s+EVENT\s+REPOSITORY\s+CREATED\s+STATUS\s+ATTEMPTS\s+NEXT\s+LAST RESULT\n/);
    assert.equal(deliveriesTable.trim().split('\n').length, 4);
    assert.equal(JSON.parse(await ok(['deliveries', '--event', 'tag.moved', '--json'])).length, 1);

    assert.match(await ok(['redeliver', retried.id]), new RegExp(`^delivery ${retried.id} queued again`));
    const [again] = (await receiver.waitFor(6)).slice(5);
    assert.equal(again!.headers['x-wharf-delivery'], retried.id);

    assert.equal(await ok(['remove', String(id)]), `webhook ${id} removed\n`);
    assert.deepEqual(JSON.parse(await ok(['list', '--json'])).map((s: { id: number }) => s.id), [generated.id]);
    const missing = await wharf(['remove', String(id)]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `wharf webhook: webhook ${id} not found\n`);
    assert.equal((await wharf(['remove', 'abc'])).code, 2);
  });
});
