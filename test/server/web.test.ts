// The web UI is served by the hub itself: the page, its assets, and nothing outside web/.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type Registry } from './v2-harness.js';

describe('web UI', () => {
  let r: Registry;
  before(async () => {
    r = await startRegistry();
  });
  after(() => r.close());

  it('serves the page and its script and stylesheet with their types', async () => {
    const page = await r.req('/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    const html = await page.text();
    assert.match(html, /<script type="module" src="\/ui\/app.js">/);
    const js = await r.req('/ui/app.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
    assert.match(await js.text(), /from '\.\/pages\/delivery\.js'/);
    assert.match(await (await r.req('/ui/pages/delivery.js')).text(), /\/api\/v1\/apps\//, 'the UI reads the management API');
    assert.match((await r.req('/ui/style.css')).headers.get('content-type')!, /^text\/css/);
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
  });

  it('serves Preact with htm from the npm package, not a CDN', async () => {
    const res = await r.req('/ui/vendor/preact-htm.js');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/javascript/);
    const { readFile } = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    assert.equal(await res.text(), await readFile(fileURLToPath(import.meta.resolve('htm/preact/standalone')), 'utf8'));
    for (const path of ['/ui/vendor/../../package.json', '/ui/vendor/other.js', '/ui/node_modules/htm/package.json']) assert.equal((await r.req(path)).status, 404, path);
  });

  it('serves nothing outside web/ and answers unknown paths with a JSON 404', async () => {
    for (const path of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/.hidden.js', '/ui/nope.js', '/ui/app.ts']) {
      const res = await r.req(path);
      assert.equal(res.status, 404, path);
      assert.match(res.headers.get('content-type')!, /^application\/json/, path);
    }
  });
});
