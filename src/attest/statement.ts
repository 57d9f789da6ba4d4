// in-toto Statement v1 (github.com/in-toto/attestation): what an attestation says about which image, and
// the attestation kinds Wharf knows (`tests` is what `wharf pipeline run` reports). Pure.
import { parseDigest } from '../oci/digest.js';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';

/** Kinds as environments require them (`requires: [tests]`) → the predicate type that proves each. */
const WELL_KNOWN: Record<string, string> = {
  tests: 'https://wharf.dev/attestations/tests/v1',
  provenance: 'https://slsa.dev/provenance/v1',
  sbom: 'https://spdx.dev/Document',
};

const KIND = /^[a-z][a-z0-9-]{0,31}$/;

export function isAttestationKind(kind: string): boolean {
  return KIND.test(kind);
}

export function predicateTypeOf(kind: string): string {
  return WELL_KNOWN[kind] ?? `https://wharf.dev/attestations/${kind}/v1`;
}

/** The kind a predicate type proves, or null for a type Wharf does not map to a kind. */
export function kindOf(predicateType: string): string | null {
  for (const [kind, type] of Object.entries(WELL_KNOWN)) if (type === predicateType) return kind;
  const m = /^https:\/\/wharf\.dev\/attestations\/([a-z][a-z0-9-]{0,31})\/v1$/.exec(predicateType);
  return m ? m[1]! : null;
}

export interface Subject {
  name: string;
  digest: Record<string, string>;
}

export interface Statement {
  _type: typeof STATEMENT_TYPE;
  subject: Subject[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** One step of a pipeline run as the tests predicate records it. */
export interface PipelineStep {
  name: string;
  kind: 'build' | 'test';
  /** the command a test step ran in the image */
  command?: string[];
  exitCode?: number;
  durationMs: number;
}

/** The predicate of a `tests` attestation: which commit and run produced the image, and which tests passed in it. */
export interface TestsPredicate {
  commit: string;
  runId: string;
  /** the image the tests ran in: its ID (config digest) — the server checks it is the subject's config */
  image: { id: string };
  steps: PipelineStep[];
  startedAt: string;
  finishedAt: string;
  /** where the run happened, as the pipeline states it (CI system, run URL, host) */
  ci?: Record<string, string>;
}

/** An image reference as a Statement subject: the repository name and the manifest digest. */
export function statementFor(repository: string, digest: string, predicateType: string, predicate: Record<string, unknown>): Statement {
  const d = parseDigest(digest);
  if (!d) throw new Error(`invalid digest ${digest}`);
  return { _type: STATEMENT_TYPE, subject: [{ name: repository, digest: { [d.algorithm]: d.hex } }], predicateType, predicate };
}

export class StatementError extends Error {}

/** Parses a Statement from untrusted (but signature-checked) bytes; throws StatementError. */
export function parseStatement(payload: Uint8Array): Statement {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new StatementError('the payload is not JSON');
  }
  const s = doc as Partial<Statement> | null;
  if (typeof s !== 'object' || s === null || s._type !== STATEMENT_TYPE) throw new StatementError(`the payload is not an in-toto ${STATEMENT_TYPE}`);
  if (!Array.isArray(s.subject) || s.subject.length === 0) throw new StatementError('the statement names no subject');
  for (const sub of s.subject) {
    if (typeof sub !== 'object' || sub === null || typeof sub.digest !== 'object' || sub.digest === null) throw new StatementError('a subject without a digest');
  }
  if (typeof s.predicateType !== 'string') throw new StatementError('the statement has no predicateType');
  if (typeof s.predicate !== 'object' || s.predicate === null || Array.isArray(s.predicate)) throw new StatementError('the statement has no predicate object');
  return s as Statement;
}

/** Whether one of the statement's subjects is exactly this digest. */
export function coversDigest(statement: Statement, digest: string): boolean {
  const d = parseDigest(digest);
  return d !== null && statement.subject.some((s) => s.digest[d.algorithm] === d.hex);
}
