// The CLI's reading of paged lists against a real in-process hub: `ApiClient.all` follows the `Link: rel="next"`
// headers of the array lists to the end (what `wharf releases` and `wharf tags history` print), and
// `ApiClient.items` the `{items, next}` cursors (users, tokens, audit).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiClient, nextLink } from '../../src/cli/client.js';
import { startRegistry, type Registry } from '../server/v2-harness.js';
import { api, pushImage } from '../delivery/delivery-harness.js';

describe('the CLI client reads every page', () => {
  let r: Registry;
  before(async () => {
    r = await startRegistry();
    for (let i = 0; i < 7; i++) await pushImage(r, 'cli/paged', `v${i}`);
  });
  after(() => r.close());

  it('follows Link rel="next" to the whole list, in order, each row once', async () => {
    const client = new ApiClient(r.url, undefined);
    const whole = (await api(r, 'GET', '/api/v1/repositories/cli/paged/tags/history?limit=1000', undefined, 200)).body as { id: number; tag: string }[];
    assert.equal(whole.length, 7);
    for (const limit of [1, 2, 3, 7]) {
      const rows = await client.all<{ id: number }>(`/api/v1/repositories/cli/paged/tags/history?limit=${limit}`);
      assert.deepEqual(rows.map((x) => x.id), whole.map((x) => x.id), `by ${limit}`);
    }
  });

  it('reads only same-server paths from a Link header', () => {
    assert.equal(nextLink('</api/v1/gc/runs?limit=2&cursor=abc>; rel="next"'), '/api/v1/gc/runs?limit=2&cursor=abc');
    assert.equal(nextLink('<https://elsewhere.example/x>; rel="next"'), null);
    assert.equal(nextLink('</api/v1/gc/runs>; rel="prev"'), null);
    assert.equal(nextLink(null), null);
  });
});
