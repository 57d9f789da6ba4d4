// Serves the web UI (the static files in web/) from the same process as the API: GET / and /ui/*.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

/** web/ at the package root; this code runs from dist/src/server/ or from the bundle in dist/bundle/cli/, as deep. */
const WEB_ROOT = fileURLToPath(new URL('../../../web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Preact with htm in one ES module, served from the npm package (no CDN, no build step). */
const VENDOR: Record<string, string> = {
  'vendor/preact-htm.js': fileURLToPath(import.meta.resolve('htm/preact/standalone')),
};

/** Answers GET / and /ui/<file>; false when the path is not the UI's. */
export async function serveWeb(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  let file: string;
  if (path === '/' || path === '/ui' || path === '/ui/') file = 'index.html';
  else if (VENDOR[path.slice('/ui/'.length)]) file = VENDOR[path.slice('/ui/'.length)]!;
  else if (path.startsWith('/ui/')) file = normalize(path.slice('/ui/'.length));
  else return false;
  // normalize() resolves '..'; anything still escaping, or a dotfile, is not ours to serve.
  const vendored = file.startsWith('/') && Object.values(VENDOR).includes(file);
  if (!vendored && (file.startsWith('..') || file.startsWith('/') || file.split('/').some((p) => p.startsWith('.')) || !TYPES[extname(file)])) return false;
  let body: Buffer;
  try {
    body = await readFile(vendored ? file : join(WEB_ROOT, file));
  } catch {
    return false;
  }
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? TYPES['.js']!,
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    'Referrer-Policy': 'same-origin',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
