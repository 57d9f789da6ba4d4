// `wharf verify APP@DIGEST|APP:TAG`: which attestations a digest has, and whether each verifies.
import type { AttestationRecord } from '../attest/attestations.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { appPath, clientFor } from './client.js';
import { printJson, printTable, shortDigest } from './output.js';

const USAGE = 'usage: wharf verify APP@DIGEST|APP:TAG [--env ENV] [--server URL] [--json]';

/** `myapp@sha256:…` or `team/myapp:1.4.2` → the app and the digest or tag. */
export function splitReference(ref: string): { app: string; ref: string } | null {
  const at = ref.indexOf('@');
  if (at > 0) return { app: ref.slice(0, at), ref: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  if (colon > 0 && colon > ref.lastIndexOf('/')) return { app: ref.slice(0, colon), ref: ref.slice(colon + 1) };
  return null;
}

export async function verifyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { env: { type: 'string' }, server: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values.help) {
    process.stdout.write(
      `${USAGE}\n\nEach attestation verifies when a signature verifies under a signer a global admin trusts for the app and the\n` +
        `attestation's kind (wharf signer list); with --env, for that environment too (what its gate accepts).\n` +
        `Exit code 0 when the digest has attestations and every one verifies, 1 otherwise.\n`,
    );
    return 0;
  }
  const target = positionals.length === 1 ? splitReference(positionals[0]!) : null;
  if (!target) throw new CliError(USAGE, 2);
  const found = await clientFor(values.server).request<{ app: string; digest: string; attestations: AttestationRecord[] }>(
    'GET',
    `${appPath(target.app)}/attestations/${encodeURIComponent(target.ref)}${values.env ? `?environment=${encodeURIComponent(values.env)}` : ''}`,
  );
  const list = found.attestations;
  const ok = list.length > 0 && list.every((a) => a.verified);
  if (values.json) {
    printJson(found);
    return ok ? 0 : 1;
  }
  if (list.length === 0) {
    process.stdout.write(`${found.app}@${found.digest}: no attestations\n`);
    return 1;
  }
  process.stdout.write(`${found.app}@${found.digest}: ${list.length} attestation${list.length === 1 ? '' : 's'}${values.env ? ` (for ${values.env})` : ''}\n`);
  printTable(
    list.map((a) => ({
      kind: a.kind,
      verified: a.verified ? 'yes' : 'NO',
      digest: shortDigest(a.digest),
      detail: a.verified
        ? [`signed by ${a.signer?.name} (${a.signer?.keyid.slice(0, 19)})`, a.commit && `commit ${a.commit.slice(0, 12)}`, a.runId && `run ${a.runId}`, a.timestamp, a.ci]
            .filter(Boolean)
            .join(', ')
        : a.reason,
    })),
    [
      ['KIND', 'kind'],
      ['VERIFIED', 'verified'],
      ['ATTESTATION', 'digest'],
      ['DETAIL', 'detail'],
    ],
  );
  return ok ? 0 : 1;
}
