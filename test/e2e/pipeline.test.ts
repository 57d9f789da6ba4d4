// `wharf pipeline run` on the example app against a real Wharf, the real dockerd for builds and two extra
// dockerd daemons as the staging and production hosts: built, tested in its own image, pushed, attested,
// released and deployed to staging, promoted and deployed to production — each host running exactly the image
// tested — and the refusals: a failing test stops before push, a failing build before test, the gate refuses
// a digest pushed by hand, also when it carries an altered or forged attestation, and a deployment that does
// not get healthy fails the pipeline, leaves the previous release running and staging's current release (only
// pending until then) where it was, and its digest is not promoted; `rollback --to <commit>` finds the release
// of the commit that ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope, type Envelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';
import { predicateTypeOf, statementFor } from '../../src/attest/statement.js';
import { daemonsUnavailable, startDaemons, type DaemonSet, type TestDaemon } from '../support/dockerd.js';
import { mustRun, run } from '../support/command.js';
import { freePort } from '../support/net.js';
import { BASE_IMAGE, buildTestApp, ensureBaseImage, removeImages } from '../support/images.js';
import { authHeaders, getManifest, listTags, sha256 } from '../support/registry-client.js';
import { REPO_ROOT, runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DSSE = 'application/vnd.dsse.envelope.v1+json';
const RUN_LABEL = 'dev.wharf.pipeline.run';

interface Summary {
  ok: boolean;
  runId: string;
  imageId?: string;
  digest?: string;
  attestation?: string;
  release?: { environment: string; digest: string };
  deployment?: {
    environment: string;
    id: number;
    status: string;
    reason: string | null;
    digest: string;
    targets: { target: string; reachable: boolean; containers: string[]; running: string[] }[];
    revertedTo?: { release: number; digest: string };
  };
  failedStep?: string;
  error?: string;
  steps: { name: string; status: string; exitCode?: number; error?: string }[];
}

/** What the app's containers of an environment run on a host, as that host's engine tells it. */
async function runningOn(host: TestDaemon, environment: string): Promise<{ image: string; imageId: string; repoDigests: string[] }[]> {
  const ids = (await host.mustDocker(['ps', '-q', '--no-trunc', '--filter', 'label=wharf.app=hello', '--filter', `label=wharf.env=${environment}`])).stdout.split('\n').filter(Boolean);
  return Promise.all(
    ids.map(async (id) => {
      const [image, imageId] = (await host.mustDocker(['inspect', '--format', '{{.Config.Image}} {{.Image}}', id])).stdout.trim().split(' ') as [string, string];
      const repoDigests = JSON.parse((await host.mustDocker(['image', 'inspect', '--format', '{{json .RepoDigests}}', imageId])).stdout) as string[];
      return { image, imageId, repoDigests };
    }),
  );
}

/** The steps of a run of the example up to its deployment, all passed. */
const UNTIL_DEPLOY = [
  ['build', 'ok'],
  ['content', 'ok'],
  ['serve', 'ok'],
  ['push', 'ok'],
  ['attest', 'ok'],
  ['release staging', 'ok'],
];

function commit(): string {
  return randomBytes(20).toString('hex');
}

test('pipeline: what was tested is what ships and runs, and production takes nothing else', { timeout: 420_000 }, async (t) => {
  const why = await daemonsUnavailable();
  if (why) return t.skip(why);
  await ensureBaseImage('docker');
  const [hosts, wharfServer] = await Promise.allSettled([startDaemons(2), startWharf()]);
  if (hosts.status === 'rejected' || wharfServer.status === 'rejected') {
    if (hosts.status === 'fulfilled') await hosts.value.teardown();
    if (wharfServer.status === 'fulfilled') await wharfServer.value.stop();
    throw hosts.status === 'rejected' ? hosts.reason : (wharfServer as PromiseRejectedResult).reason;
  }
  const daemons: DaemonSet = hosts.value;
  const server: WharfServer = wharfServer.value;
  const [staging, production] = daemons.daemons as [TestDaemon, TestDaemon];
  const ports = { staging: await freePort(), production: await freePort() };
  const work = await mkdtemp(join(tmpdir(), 'wharf-pipeline-e2e-'));
  const env = { WHARF_SERVER: server.url, WHARF_CONFIG_DIR: join(work, 'config') };
  const wharf = (args: string[], extra: Record<string, string> = {}) => runWharf(args, { env: { ...env, ...extra }, timeoutMs: 150_000 });
  const ok = async (...args: string[]) => {
    const r = await wharf(args);
    assert.equal(r.code, 0, `wharf ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const repo = `${server.host}/hello`;
  const images: string[] = [`${repo}:manual`];
  /**
   * A copy of examples/hello to run the pipeline in (and to break on purpose), its targets moved from the local
   * engine to the test hosts and its ports to free ones; a shorter health timeout keeps the failing deployment short.
   */
  const example = async (name: string) => {
    const dir = join(work, name);
    await cp(join(REPO_ROOT, 'examples', 'hello'), dir, { recursive: true });
    const doc = parseDocument(await readFile(join(dir, 'wharf.yaml'), 'utf8'));
    for (const [env, host] of [['staging', staging], ['production', production]] as const) {
      doc.setIn(['environments', env, 'targets'], [`${env}-host`]);
      doc.setIn(['environments', env, 'container', 'port'], ports[env]);
    }
    doc.setIn(['rollout', 'healthTimeout'], '8s');
    // The test base instead of the one make-base.sh makes (test/e2e/hello-example.test.ts runs that step).
    doc.setIn(['pipeline', 'build', 'args', 'BASE'], BASE_IMAGE);
    await writeFile(join(dir, 'wharf.yaml'), String(doc));
    return dir;
  };
  const page = async (env: 'staging' | 'production') => (await fetch(`http://127.0.0.1:${ports[env]}/`)).text();
  // Every run of this file gets a run id of its own (as GitLab's pipeline and job ids make one), so that the containers
  // it looks for, and removes at the end, are its own: the other CI suite may run a pipeline on the same engine meanwhile.
  const pipelineId = `e2e-${randomBytes(4).toString('hex')}`;
  const pipeline = async (dir: string, sha: string, flags: string[] = [], extra: Record<string, string> = {}) => {
    images.push(`${repo}:${sha}`);
    return wharf(['pipeline', 'run', '-f', join(dir, 'wharf.yaml'), ...flags], { CI_COMMIT_SHA: sha, CI_PIPELINE_ID: pipelineId, CI_JOB_ID: sha.slice(0, 12), ...extra });
  };
  const v2 = (path: string, init: RequestInit = {}) => fetch(`${server.url}/v2/hello/${path}`, { ...init, headers: { ...authHeaders(server.url), ...(init.headers as Record<string, string>) } });
  const containersOfPipelines = async () => {
    const all = (await mustRun('docker', ['ps', '-a', '--filter', `label=${RUN_LABEL}`, '--format', `{{.ID}} {{.Label "${RUN_LABEL}"}}`])).stdout;
    return all.split('\n').filter((l) => l.split(' ')[1]?.startsWith(`gitlab-${pipelineId}-`)).map((l) => l.split(' ')[0]).join('\n');
  };
  /** A management API call as admin; release-like requests take `deploy: false` here, which the CLI has no flag for. */
  const apiPost = (path: string, body: unknown) =>
    fetch(`${server.url}/api/v1/apps/hello/${path}`, { method: 'POST', headers: { authorization: server.authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  try {
    await withLogsOnFailure(server, async () => {
      await mustRun(process.execPath, [join(REPO_ROOT, 'bin', 'wharf.js'), 'login', server.url, '-u', server.admin.username, '--password-stdin'], {
        env,
        input: server.admin.password,
      });
      await server.login('docker');

      // An image built and pushed by hand: it creates the app's repository and is the unvalidated candidate.
      await buildTestApp(`${repo}:manual`, { sizeKiB: 16 });
      const manual = (await mustRun('docker', ['push', `${repo}:manual`])).stdout.match(/digest: (sha256:[0-9a-f]{64})/)![1]!;
      // The test hosts, registered by the global admin for this app (with the host network the example uses).
      for (const [env, host] of [['staging', staging], ['production', production]] as const) {
        await ok('target', 'add', `${env}-host`, host.endpoint, '--apps', 'hello', '--allow', 'network-host');
      }
      // The app file, applied by an admin: staging and production, their rules, targets and health check.
      const green = await example('green');
      assert.match(await ok('apply', '-f', join(green, 'wharf.yaml')), /app hello applied/);

      // --- the green run, as CI runs it: a robot token that may push and release to staging only ----
      const token = await runWharf(['token', 'create', '--data', server.dataDir, '--name', 'ci', '--scope', 'repository:hello:pull,push,release:staging', '--json']);
      assert.equal(token.code, 0, token.stderr);
      const ciSecret = (JSON.parse(token.stdout) as { secret: string }).secret;
      // The CI's signing key: made by `wharf signer keygen`, its public half trusted by the global admin for hello's
      // tests in production and gate (environments that require them). The CI token cannot trust a key itself.
      const keys = join(work, 'keys');
      await mkdir(keys);
      const keygen = await runWharf(['signer', 'keygen', 'ci'], { cwd: keys });
      assert.equal(keygen.code, 0, keygen.stderr);
      assert.equal((await stat(join(keys, 'ci.key'))).mode & 0o777, 0o600, 'the private key is readable by its owner only');
      const rogue = await wharf(['signer', 'add', 'ci', '--public-key', join(keys, 'ci.pub'), '--apps', 'hello', '--kinds', 'tests', '--env', '*'], { WHARF_TOKEN: ciSecret });
      assert.equal(rogue.code, 1, 'a CI token cannot register its own key');
      assert.match(rogue.stderr, /^wharf signer: .*(denied|admin)/im);
      assert.match(await ok('signer', 'add', 'ci', '--public-key', join(keys, 'ci.pub'), '--apps', 'hello', '--kinds', 'tests', '--env', 'production,gate'), /^signer ci \(ed25519 sha256:[0-9a-f]{64}\) trusted for tests of hello in production, gate$/m);
      const signingKey = { WHARF_SIGNING_KEY: join(keys, 'ci.key') };
      const yaml = await readFile(join(green, 'wharf.yaml'), 'utf8');
      await writeFile(join(green, 'wharf.yaml'), yaml.replace('    dockerfile: Dockerfile\n', '    dockerfile: Dockerfile\n    tags: ["1.0.0"]\n'));
      images.push(`${repo}:1.0.0`);
      const sha1 = commit();
      const r1 = await pipeline(green, sha1, ['--json'], { WHARF_TOKEN: ciSecret, ...signingKey });
      assert.equal(r1.code, 0, `the green pipeline failed:\n${r1.stdout}\n${r1.stderr}`);
      const s1 = JSON.parse(r1.stdout) as Summary;
      assert.deepEqual(s1.steps.map((s) => [s.name, s.status]), [...UNTIL_DEPLOY, ['deploy staging', 'ok']]);
      assert.match(r1.stderr, /content \| content ok/, 'the test output is streamed');
      assert.match(r1.stderr, /deploy staging \| \[unix:\/\/[^\]]+\] healthy: 1 replica\(s\) healthy/, "the deployment's progress is streamed");
      assert.match(r1.stderr, /build \| Step \d+\/\d+ : FROM/, 'the build log is streamed');
      assert.equal(await containersOfPipelines(), '', 'test containers are removed');

      // The bytes: the commit tag and the version tag name the pushed manifest, whose image is the one tested.
      const pushed = await getManifest(server.url, 'hello', sha1);
      assert.equal(pushed.status, 200);
      assert.equal(pushed.digest, s1.digest);
      assert.equal((await getManifest(server.url, 'hello', '1.0.0')).digest, s1.digest);
      const config = (JSON.parse(pushed.body.toString()) as { config: { digest: string } }).config.digest;
      assert.equal(config, s1.imageId, 'the pushed image is the image built and tested');
      assert.equal((await mustRun('docker', ['image', 'inspect', '--format', '{{.Id}}', `${repo}:${sha1}`])).stdout.trim(), s1.imageId);
      assert.equal(s1.release!.digest, s1.digest, 'staging got the digest that was tested');

      // Deployed: the staging host runs the digest tested — the image ID it runs is the image built and tested.
      const d1 = s1.deployment!;
      assert.deepEqual([d1.environment, d1.status, d1.reason, d1.digest], ['staging', 'succeeded', null, s1.digest]);
      assert.deepEqual(d1.targets.map((x) => [x.target, x.reachable, x.running]), [[staging.endpoint, true, [s1.digest]]]);
      const onStaging = await runningOn(staging, 'staging');
      assert.equal(onStaging.length, 1, JSON.stringify(onStaging));
      assert.equal(onStaging[0]!.image, `${repo}@${s1.digest}`);
      assert.equal(onStaging[0]!.imageId, s1.imageId, 'the container runs the very image that was tested');
      assert.ok(onStaging[0]!.repoDigests.includes(`${repo}@${s1.digest}`), JSON.stringify(onStaging[0]!.repoDigests));
      assert.deepEqual(await runningOn(production, 'production'), [], 'production is not deployed by the pipeline');
      assert.match(await page('staging'), /Hello from Wharf/);
      const history = JSON.parse(await ok('deployments', 'hello', '--env', 'staging', '--json')) as { id: number; digest: string; status: string; actor: string }[];
      assert.deepEqual(history.map((d) => [d.id, d.digest, d.status, d.actor]), [[d1.id, s1.digest, 'succeeded', 'ci']]);
      const status = JSON.parse(await ok('status', 'hello', '--env', 'staging', '--json')) as { inSync: boolean; targets: { containers: { digest: string }[] }[] }[];
      assert.equal(status[0]!.inSync, true, JSON.stringify(status));
      assert.deepEqual(status[0]!.targets[0]!.containers.map((c) => c.digest), [s1.digest]);
      // The release names the commit and the pipeline run it came from (what `rollback --to <commit>` finds it by).
      const released = JSON.parse(await ok('releases', 'hello', '--env', 'staging', '--json')) as { digest: string; commit: string | null; pipelineRun: string | null }[];
      assert.deepEqual(released.map((r) => [r.digest, r.commit, r.pipelineRun]), [[s1.digest, sha1, s1.runId]]);

      // The attestation, as any OCI tool sees it: a referrer of the digest, a DSSE envelope with an in-toto statement.
      const referrers = (await (await v2(`referrers/${s1.digest}`)).json()) as { manifests: { digest: string; artifactType: string }[] };
      assert.deepEqual(referrers.manifests.map((m) => [m.digest, m.artifactType]), [[s1.attestation, DSSE]]);
      const artifact = (await (await v2(`manifests/${s1.attestation}`, { headers: { accept: OCI_MANIFEST } })).json()) as {
        layers: { digest: string }[];
        subject: { digest: string };
      };
      assert.equal(artifact.subject.digest, s1.digest);
      const genuine = (await (await v2(`blobs/${artifact.layers[0]!.digest}`)).json()) as Envelope;
      const statement = JSON.parse(Buffer.from(genuine.payload, 'base64').toString()) as {
        subject: { digest: { sha256: string } }[];
        predicate: { commit: string; runId: string; image: { id: string }; steps: { name: string; exitCode?: number; command?: string[] }[] };
      };
      assert.equal(`sha256:${statement.subject[0]!.digest.sha256}`, s1.digest);
      assert.equal(statement.predicate.commit, sha1);
      assert.equal(statement.predicate.runId, s1.runId);
      assert.equal(statement.predicate.image.id, s1.imageId);
      assert.deepEqual(statement.predicate.steps.map((s) => [s.name, s.exitCode]), [
        ['build', undefined],
        ['content', 0],
        ['serve', 0],
      ]);
      assert.deepEqual(statement.predicate.steps[1]!.command, ['/bin/sh', '-c', 'sh /app/test/content.sh']);
      assert.deepEqual(genuine.signatures.map((x) => x.keyid), [(JSON.parse(await ok('signer', 'list', '--json')) as { keyid: string }[])[0]!.keyid], 'signed by the CI key');

      const verified = JSON.parse(await ok('verify', `hello:${sha1}`, '--env', 'production', '--json')) as {
        digest: string;
        attestations: { kind: string; verified: boolean; commit: string; signer: { name: string } }[];
      };
      assert.equal(verified.digest, s1.digest);
      assert.deepEqual(verified.attestations.map((a) => [a.kind, a.verified, a.commit, a.signer.name]), [['tests', true, sha1, 'ci']]);
      assert.match(await ok('verify', `hello:${sha1}`), new RegExp(`^tests\\s+yes\\s+\\S+\\s+signed by ci \\(sha256:[0-9a-f]{12}\\), commit ${sha1.slice(0, 12)}, run ${s1.runId}`, 'm'));
      const elsewhere = await wharf(['verify', `hello:${sha1}`, '--env', 'staging']);
      assert.equal(elsewhere.code, 1, 'the key is not trusted for staging');
      assert.match(elsewhere.stdout, /signed by ci, which is not trusted for the environment staging \(only production, gate\)/);

      // Production takes the validated digest by promotion, pulls exactly it, and (autoDeploy) runs it.
      const promoted = JSON.parse(await ok('promote', 'hello', '--from', 'staging', '--to', 'production', '--json')) as {
        digest: string;
        release: { digest: string; environment: string };
        result: { status: string };
      };
      assert.equal(promoted.release.digest, s1.digest, 'the digest released to production is the digest tested');
      assert.deepEqual([promoted.digest, promoted.result.status], [s1.digest, 'succeeded'], 'and it is the digest deployed');
      assert.equal((await getManifest(server.url, 'hello', 'production')).digest, s1.digest);
      const onProduction = await runningOn(production, 'production');
      assert.deepEqual(onProduction.map((c) => [c.image, c.imageId]), [[`${repo}@${s1.digest}`, s1.imageId]], 'production runs the image tested');
      assert.match(await page('production'), /Hello from Wharf/);
      const releases = JSON.parse(await ok('releases', 'hello', '--json')) as { environment: string; attestations: string[] }[];
      assert.deepEqual(releases.map((r) => [r.environment, r.attestations]), [
        ['production', ['tests']],
        ['staging', ['tests']],
      ]);
      assert.match(await ok('releases', 'hello'), /ATTESTED/);

      // --- the gate ------------------------------------------------------------------------------------
      // (an environment without targets, so that a release is current at once, and requires tests like production)
      await ok('env', 'create', 'hello', 'gate', '--requires', 'tests');
      const promote = () => wharf(['release', 'hello', 'manual', '--env', 'gate']);
      const unattested = await promote();
      assert.notEqual(unattested.code, 0);
      assert.match(unattested.stderr, /^wharf release: release to hello\/gate refused: it requires verified 'tests' attestations of sha256:[0-9a-f]{64}; missing: 'tests' \(no such attestation\)\n$/);

      // An attestation pushed by hand: the genuine envelope, its statement moved to the manual image.
      const pushArtifact = async (envelope: Envelope) => {
        const bytes = Buffer.from(JSON.stringify(envelope));
        for (const blob of [bytes, Buffer.from('{}')]) {
          const res = await v2(`blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } });
          assert.equal(res.status, 201, await res.text());
        }
        const subject = await getManifest(server.url, 'hello', manual);
        const manifest = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          artifactType: DSSE,
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 },
          layers: [{ mediaType: DSSE, digest: sha256(bytes), size: bytes.length }],
          subject: { mediaType: subject.contentType!, digest: manual, size: subject.body.length },
        });
        const res = await v2(`manifests/${sha256(manifest)}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
        assert.equal(res.status, 201, await res.text());
        return sha256(manifest);
      };
      const moved = { ...statement, subject: [{ name: 'hello', digest: { sha256: manual.slice('sha256:'.length) } }] };
      const altered = await pushArtifact({ ...genuine, payload: Buffer.from(JSON.stringify(moved)).toString('base64') });
      const alteredRefusal = await promote();
      assert.notEqual(alteredRefusal.code, 0);
      assert.match(alteredRefusal.stderr, new RegExp(`missing: 'tests' \\(attestation ${altered} does not verify: the signature does not match the signed content`));

      // A statement about the manual image signed with a key the server does not know.
      const forger = generateKeyPairSync('ed25519');
      const forgedStatement = statementFor('hello', manual, predicateTypeOf('tests'), { ...statement.predicate, image: { id: 'sha256:' + '0'.repeat(64) } });
      const forged = await pushArtifact(
        signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(forgedStatement)), { keyid: keyIdOf(forger.publicKey), privateKey: forger.privateKey }),
      );
      const forgedRefusal = await promote();
      assert.notEqual(forgedRefusal.code, 0);
      assert.match(forgedRefusal.stderr, new RegExp(`attestation ${forged} does not verify: not signed by a trusted key`));
      assert.equal((await getManifest(server.url, 'hello', 'production')).digest, s1.digest, 'production is untouched');

      // The CI token's push rights alone attest nothing: the server signs no report, nor stores an unsigned envelope.
      const asCi = (body: unknown) =>
        fetch(`${server.url}/api/v1/apps/hello/attestations`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`token:${ciSecret}`).toString('base64')}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const report = await asCi({ digest: manual, kind: 'tests', predicate: statement.predicate });
      assert.equal(report.status, 400, await report.clone().text());
      const unsigned = await asCi({ envelope: { payload: Buffer.from(JSON.stringify(moved)).toString('base64'), payloadType: IN_TOTO_PAYLOAD_TYPE, signatures: [] } });
      assert.equal(unsigned.status, 403);
      assert.match(await unsigned.text(), /the attestation does not verify: the envelope carries no signature/);

      const check = await wharf(['verify', 'hello:manual']);
      assert.equal(check.code, 1, 'verify fails when an attestation does not verify');
      assert.match(check.stdout, /^hello@sha256:[0-9a-f]{64}: 2 attestations$/m);
      assert.equal(check.stdout.match(/^tests\s+NO\s/gm)?.length, 2, check.stdout);

      // --- a failing test stops the pipeline before push --------------------------------------------
      const failing = await example('failing');
      await writeFile(join(failing, 'www', 'index.html'), '<h1>Goodbye</h1>\n');
      const sha2 = commit();
      const r2 = await pipeline(failing, sha2);
      assert.equal(r2.code, 1, `${r2.stdout}\n${r2.stderr}`);
      assert.match(r2.stdout, /^ok      build \(/m);
      assert.match(r2.stdout, /^FAILED  content \([\d.]+s\): exited with 1$/m);
      assert.match(r2.stdout, /^skipped push: content failed$/m);
      assert.match(r2.stdout, /^skipped deploy staging: content failed$/m);
      assert.match(r2.stdout, /^pipeline failed at content: exited with 1; not run: serve, push, attest, release staging, deploy staging$/m);
      assert.ok(!(await listTags(server.url, 'hello')).includes(sha2), 'nothing was pushed');
      assert.equal(await containersOfPipelines(), '', 'the failed test container is removed');

      // --- a failing build stops the pipeline before test -------------------------------------------
      const broken = await example('broken');
      await writeFile(join(broken, 'Dockerfile'), (await readFile(join(broken, 'Dockerfile'), 'utf8')) + 'RUN false\n');
      const sha3 = commit();
      const r3 = await pipeline(broken, sha3, ['--json']);
      assert.equal(r3.code, 1);
      const s3 = JSON.parse(r3.stdout) as Summary & { error: string };
      assert.equal(s3.failedStep, 'build');
      assert.match(s3.error, /returned a non-zero code: 1/);
      assert.deepEqual(s3.steps.map((s) => s.status), ['failed', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped']);
      assert.ok(!(await listTags(server.url, 'hello')).includes(sha3));
      const stagingEnv = (JSON.parse(await ok('env', 'list', 'hello', '--json')) as { name: string; current: { digest: string } }[]).find((e) => e.name === 'staging');
      assert.equal(stagingEnv!.current.digest, s1.digest, 'failed runs released nothing');
      assert.deepEqual((await runningOn(staging, 'staging')).map((c) => c.image), [`${repo}@${s1.digest}`], 'nor deployed anything');

      // --- a deployment that does not get healthy fails the pipeline; the previous release runs on ------
      // The tests pass (they start their own server), but the image's own server has no page at / to answer.
      const unhealthy = await example('unhealthy');
      await writeFile(join(unhealthy, 'www', 'index.html'), '<!doctype html>\n<h1>Hello from Wharf</h1>\n<p>v2</p>\n');
      await writeFile(
        join(unhealthy, 'Dockerfile'),
        (await readFile(join(unhealthy, 'Dockerfile'), 'utf8')) + `CMD trap 'exit 0' TERM INT; httpd -f -p "\${LISTEN_ADDRESS}:\${PORT}" -h /app & wait\n`,
      );
      const sha4 = commit();
      const r4 = await pipeline(unhealthy, sha4, ['--json'], { WHARF_TOKEN: ciSecret, ...signingKey });
      assert.equal(r4.code, 1, `a failed deployment fails the pipeline:\n${r4.stdout}\n${r4.stderr}`);
      const s4 = JSON.parse(r4.stdout) as Summary;
      assert.deepEqual(s4.steps.map((s) => [s.name, s.status]), [...UNTIL_DEPLOY, ['deploy staging', 'failed']]);
      assert.equal(s4.failedStep, 'deploy staging');
      assert.notEqual(s4.digest, s1.digest);
      assert.equal(s4.deployment!.status, 'rolled_back');
      assert.match(s4.error!, new RegExp(`^deploy staging: deployment #${s4.deployment!.id} rolled back: .*health check failed 3 times in a row: GET http://127\\.0\\.0\\.1:${ports.staging}/: HTTP 404`));
      assert.match(r4.stderr, /^deploy staging \| finished: rolled_back: unix:\/\/.*health check failed 3 times in a row/m);
      assert.deepEqual(s4.deployment!.targets.map((x) => x.running), [[s1.digest]], 'the summary says what runs after the rollback');
      assert.deepEqual((await runningOn(staging, 'staging')).map((c) => [c.image, c.imageId]), [[`${repo}@${s1.digest}`, s1.imageId]], 'staging runs the tested release again');
      assert.match(await page('staging'), /Hello from Wharf/);
      const failedRecord = (JSON.parse(await ok('deployments', 'hello', '--env', 'staging', '--json')) as { id: number; digest: string; status: string }[])[0]!;
      assert.deepEqual([failedRecord.id, failedRecord.digest, failedRecord.status], [s4.deployment!.id, s4.digest, 'rolled_back']);

      // Staging's release of the failed digest was only pending: its current release never left s1, nor did
      // hello:staging, so there is nothing to revert.
      assert.equal(s4.deployment!.revertedTo, undefined);
      const after = (JSON.parse(await ok('env', 'list', 'hello', '--json')) as { name: string; current: { digest: string; actor: string }; pending: unknown }[]).find((e) => e.name === 'staging')!;
      assert.deepEqual([after.current.digest, after.current.actor, after.pending], [s1.digest, 'ci', null]);
      assert.equal((await getManifest(server.url, 'hello', 'staging')).digest, s1.digest);
      // Promotion takes what runs; the failed digest released again without deploying is pending, never promoted.
      assert.equal((await apiPost('releases', { environment: 'staging', ref: s4.digest, deploy: false })).status, 201);
      const good = await apiPost('promote', { from: 'staging', to: 'production', deploy: false });
      assert.equal(good.status, 201);
      assert.equal(((await good.json()) as { digest: string }).digest, s1.digest);
      assert.equal((await getManifest(server.url, 'hello', 'production')).digest, s1.digest, 'production keeps the good digest');

      // --- rollback to a commit: the newest release of it that ran here ------------------------------
      // sha4's releases never ran in staging (one rolled back, one pending): there is none of it to go back to.
      const neverRan = await wharf(['rollback', 'hello', '--env', 'staging', '--to', sha4.slice(0, 7)]);
      assert.equal(neverRan.code, 1, `${neverRan.stdout}\n${neverRan.stderr}`);
      assert.match(neverRan.stderr, new RegExp(`^wharf rollback: no release ${sha4.slice(0, 7)} in the history of hello/staging\n$`));
      const back = JSON.parse(await ok('rollback', 'hello', '--env', 'staging', '--to', sha1.slice(0, 7), '--deploy', '--json')) as {
        release: { kind: string; digest: string; commit: string; pipelineRun: string };
        result: { status: string };
      };
      assert.deepEqual([back.release.kind, back.release.digest, back.release.commit, back.release.pipelineRun], ['rollback', s1.digest, sha1, s1.runId]);
      assert.equal(back.result.status, 'succeeded');
      assert.equal((await getManifest(server.url, 'hello', 'staging')).digest, s1.digest);
    });
  } finally {
    await removeImages('docker', images);
    const left = await containersOfPipelines().catch(() => '');
    if (left) await run('docker', ['rm', '-f', ...left.split('\n')]);
    await rm(work, { recursive: true, force: true });
    await daemons.teardown();
    await server.stop();
  }
});
