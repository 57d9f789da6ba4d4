// A binary host mirror for better-sqlite3, on loopback, serving the build this checkout already made for the Node that
// runs the tests. On a machine that reaches GitHub, installing Wharf fetches better-sqlite3 prebuilt from its GitHub
// releases; here only the npm registry is reachable, so without a mirror every install compiles it from source
// (minutes of CPU for `npm i -g` and for the image's build). prebuild-install's documented mirror setting,
// `npm_config_better_sqlite3_binary_host`, is how an offline site points installs at its own copy; this is one.
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mustRun } from './command.js';
import { REPO_ROOT } from './server.js';

export interface PrebuiltMirror {
  /** the value for npm_config_better_sqlite3_binary_host */
  url: string;
  /** the paths asked for so far, and whether each was served */
  requests: { path: string; served: boolean }[];
  close(): Promise<void>;
}

/**
 * Serves build/Release/better_sqlite3.node of this checkout as the prebuild for this Node's ABI on linux-x64
 * (prebuild-install's name: better-sqlite3-vVERSION-node-vABI-linux-x64.tar.gz); anything else is a 404, so an
 * install for another Node or platform falls back to compiling, as it would with the real host.
 */
export async function startPrebuiltMirror(): Promise<PrebuiltMirror> {
  const pkgDir = join(REPO_ROOT, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const binary = join(pkgDir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(binary)) throw new Error(`no better-sqlite3 build to serve at ${binary}`);
  const work = await mkdtemp(join(tmpdir(), 'wharf-prebuilt-'));
  const tarball = join(work, 'prebuild.tar.gz');
  // The archive prebuild-install unpacks into the package: build/Release/better_sqlite3.node.
  await mustRun('tar', ['-czf', tarball, '-C', pkgDir, 'build/Release/better_sqlite3.node']);
  const body = await readFile(tarball);
  const served = `/v${version}/better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const requests: PrebuiltMirror['requests'] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    const hit = req.method === 'GET' && path === served;
    requests.push({ path, served: hit });
    if (!hit) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(work, { recursive: true, force: true });
    },
  };
}
