// `node dist/bench/gc.js [--blobs N]`: how long online garbage collection takes over N blobs (default 2,000)
// in N/2 untagged manifests: runs with nothing to collect, a dry run, a run that deletes half the blobs, and
// one where retention deletes the remaining manifests and GC their blobs. In-process, temp data dir.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../src/config.js';
import { digestOf } from '../src/oci/digest.js';
import { OCI_MANIFEST } from '../src/oci/media-types.js';
import { openWharf } from '../src/wharf.js';

const i = process.argv.indexOf('--blobs');
const BLOBS = i > 0 ? Number(process.argv[i + 1]) : 2000;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-gc-'));
  const wharf = await openWharf({ ...loadConfig({ flags: { data: dir }, env: {} }), gc: { interval: 0, grace: 0, keepReleases: 10 } });
  try {
    const t0 = performance.now();
    const manifests: string[] = [];
    for (let m = 0; m < BLOBS / 2; m++) {
      const blobs = [randomBytes(1024), randomBytes(4096)];
      for (const b of blobs) await wharf.registry.putBlob('bench/app', digestOf(b), Readable.from([b]));
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(blobs[0]!), size: blobs[0]!.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(blobs[1]!), size: blobs[1]!.length }],
        }),
      );
      manifests.push((await wharf.registry.putManifest('bench/app', digestOf(body), body, OCI_MANIFEST)).digest);
    }
    const setup = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 5));

    const time = async (label: string, dryRun: boolean) => {
      const start = performance.now();
      const report = await wharf.gc.collect({ dryRun, trigger: 'cli' });
      const ms = performance.now() - start;
      console.log(`${label.padEnd(34)} ${ms.toFixed(0).padStart(6)} ms   ${report.manifests.length} manifests, ${report.blobs.length} blobs, ${report.linksDropped} links, ${report.bytes} bytes`);
    };
    console.log(`${BLOBS} blobs in ${BLOBS / 2} manifests (set up in ${(setup / 1000).toFixed(1)} s)`);
    await time('gc --dry-run, nothing to collect', true);
    await time('gc, nothing to collect', false);
    await time('gc, nothing to collect (again)', false);
    for (const d of manifests.slice(0, manifests.length / 2)) await wharf.registry.deleteManifest('bench/app', d);
    await new Promise((r) => setTimeout(r, 5));
    await time('gc --dry-run, half garbage', true);
    await time('gc, deleting half the blobs', false);
    await wharf.retention.addPolicy({ repositories: 'bench/*', tags: '*', untaggedOlderThan: 0 }, null);
    await time('retention + gc, deleting the rest', false);
  } finally {
    await wharf.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
