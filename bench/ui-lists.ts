// `node dist/bench/ui-lists.js`: how fast the UI's lists answer on a hub with 1,000 repositories and 10,000 tags
// (999 repositories of 5 tags, one of 5,005): first and later pages of repositories, a prefix search, and tag
// pages of the big repository by name and by push time. Seeds over HTTP into an in-process hub (auth off).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { digestOf } from '../src/oci/digest.js';
import { OCI_MANIFEST } from '../src/oci/media-types.js';
import { createHttpServer, listen } from '../src/server/server.js';
import { openWharf } from '../src/wharf.js';

const REPOS = 1000;
const TAGS_SMALL = 5;
const TAGS_BIG = 10_000 - (REPOS - 1) * TAGS_SMALL;

async function main(): Promise<void> {
  const data = await mkdtemp(join(tmpdir(), 'wharf-bench-ui-'));
  const wharf = await openWharf(loadConfig({ flags: { data }, env: {} }));
  const running = await listen(createHttpServer({ wharf, log: pino({ level: 'silent' }) }), '127.0.0.1', 0);
  const url = running.url;
  try {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {} }));
    const put = async (repo: string, tag: string, seed: string) => {
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
        layers: [],
        annotations: { seed },
      });
      const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
      if (res.status !== 201) throw new Error(`${repo}:${tag} ${res.status} ${await res.text()}`);
    };
    const started = performance.now();
    const repoNames = Array.from({ length: REPOS }, (_, i) => (i === 0 ? 'big/app' : `team-${i % 20}/app-${String(i).padStart(4, '0')}`));
    for (const repo of repoNames) {
      const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config });
      if (res.status !== 201) throw new Error(`blob ${res.status}`);
    }
    const jobs: (() => Promise<void>)[] = [];
    for (const repo of repoNames) {
      const n = repo === 'big/app' ? TAGS_BIG : TAGS_SMALL;
      for (let t = 0; t < n; t++) jobs.push(() => put(repo, `v${t}`, `${repo}-${t}`));
    }
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < jobs.length) await jobs[next++]!();
    }));
    console.log(`seeded ${REPOS} repositories, ${jobs.length} tags in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const measure = async (label: string, path: string, runs = 200) => {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < runs + 20; i++) {
        const t0 = performance.now();
        const res = await fetch(url + path);
        const body = await res.text();
        if (res.status !== 200) throw new Error(`${path}: ${res.status} ${body}`);
        if (i >= 20) times.push(performance.now() - t0);
        bytes = body.length;
      }
      times.sort((a, b) => a - b);
      const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
      console.log(`${label.padEnd(52)} p50 ${q(0.5).padStart(6)} ms  p95 ${q(0.95).padStart(6)} ms  (${bytes} B)`);
    };
    const first = (await (await fetch(`${url}/api/v1/repositories?limit=50`)).json()) as { next: string };
    let cursor = first.next;
    for (let i = 0; i < 10; i++) cursor = ((await (await fetch(`${url}/api/v1/repositories?limit=50&cursor=${cursor}`)).json()) as { next: string }).next;
    await measure('repositories, first page (50)', '/api/v1/repositories?limit=50');
    await measure('repositories, 12th page (50)', `/api/v1/repositories?limit=50&cursor=${cursor}`);
    await measure('repositories, prefix team-7/ (50)', '/api/v1/repositories?limit=50&prefix=team-7/');
    await measure(`tags of big/app (${TAGS_BIG}), by name (50)`, '/api/v1/repositories/big/app/tags?limit=50');
    await measure(`tags of big/app (${TAGS_BIG}), newest push (50)`, '/api/v1/repositories/big/app/tags?limit=50&sort=pushed');
    await measure(`tags of big/app, prefix v49 (50)`, '/api/v1/repositories/big/app/tags?limit=50&prefix=v49');
    await measure('OpenAPI document', '/api/v1/openapi.json');
  } finally {
    await running.close();
    await wharf.close();
    await rm(data, { recursive: true, force: true });
  }
}

await main();
