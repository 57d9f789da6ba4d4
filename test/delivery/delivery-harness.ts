// Shared steps for the delivery tests: a running hub, images pushed under tags, and JSON API calls.
import assert from 'node:assert/strict';
import { imageManifest, putManifest, type Registry } from '../server/v2-harness.js';

/** Pushes a distinct image manifest under `tag` and returns its digest. */
export async function pushImage(r: Registry, repo: string, tag: string, seed = tag): Promise<string> {
  const body = await imageManifest(r, repo, { seed });
  const res = await putManifest(r, repo, tag, body);
  assert.equal(res.status, 201, await res.text());
  return res.headers.get('docker-content-digest')!;
}

export async function api<T = any>(r: Registry, method: string, path: string, body?: unknown, expectStatus?: number): Promise<{ status: number; body: T }> {
  const res = await r.req(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (expectStatus !== undefined) assert.equal(res.status, expectStatus, `${method} ${path}: ${text}`);
  return { status: res.status, body: text ? (JSON.parse(text) as T) : (undefined as T) };
}

/** The message of an OCI error body. */
export function errorMessage(body: unknown): string {
  return (body as { errors: { message: string }[] }).errors[0]!.message;
}
