// A cross-repository mount under token auth, as Distribution does it: the 401 challenge of
// POST …/blobs/uploads/?mount=D&from=OTHER asks for `repository:OTHER:pull` beside the target's scope, a
// client that fetches the token the challenge names gets a real mount (201, no upload), and a token without
// pull on the source gets an upload session instead (never a mount of what it cannot read).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, basic, bearer, pushImage, startAuthHub } from '../auth/auth-harness.js';

const ADMIN = basic('admin', ADMIN_PASSWORD);

/** The scopes of a Bearer challenge, split as clients split them. */
function challengedScopes(header: string | null): string[] {
  const scope = /scope="([^"]*)"/.exec(header ?? '')?.[1];
  return scope === undefined ? [] : scope.split(' ');
}

test('the challenge of a cross-repository mount names the source, and its token mounts', async (t) => {
  const hub = await startAuthHub();
  t.after(() => hub.close());
  const { layer } = await pushImage(hub, ADMIN, 'team/one', '1');
  const mountPath = `/v2/team/two/blobs/uploads/?mount=${layer}&from=team/one`;

  const challenge = await hub.req(mountPath, { method: 'POST' });
  assert.equal(challenge.status, 401);
  const scopes = challengedScopes(challenge.headers.get('www-authenticate'));
  assert.deepEqual(scopes, ['repository:team/two:pull,push', 'repository:team/one:pull']);

  // What docker and the conformance suite do next: a token for exactly the challenged scopes.
  const token = await bearer(hub, ADMIN, ...scopes);
  const mounted = await hub.req(mountPath, { method: 'POST', auth: token });
  assert.equal(mounted.status, 201, await mounted.text());
  assert.equal(mounted.headers.get('docker-content-digest'), layer);
  assert.equal((await hub.req(`/v2/team/two/blobs/${layer}`, { method: 'HEAD', auth: token })).status, 200);

  // Without pull on the source, the same request opens an upload session: nothing is mounted.
  const narrow = await bearer(hub, ADMIN, 'repository:team/three:pull,push');
  const fallback = await hub.req(`/v2/team/three/blobs/uploads/?mount=${layer}&from=team/one`, { method: 'POST', auth: narrow });
  assert.equal(fallback.status, 202);
  assert.equal((await hub.req(`/v2/team/three/blobs/${layer}`, { method: 'HEAD', auth: narrow })).status, 404);
});

test('a source that is no repository name is not echoed into the challenge', async (t) => {
  const hub = await startAuthHub();
  t.after(() => hub.close());
  for (const from of ['Bad"Name', '..%2Fx', '%0d%0aX-Injected:%201']) {
    const res = await hub.req(`/v2/team/two/blobs/uploads/?mount=sha256:${'a'.repeat(64)}&from=${from}`, { method: 'POST' });
    assert.equal(res.status, 401);
    assert.deepEqual(challengedScopes(res.headers.get('www-authenticate')), ['repository:team/two:pull,push']);
    assert.equal(res.headers.get('x-injected'), null);
  }
});
