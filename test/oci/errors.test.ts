// Errors carry a domain code, never an HTTP status: reads every source file outside server/ (and cli/, which reads
// the statuses the API answers) and fails on an HTTP status literal handed to an error (constructor or factory
// argument, `status:` field, `.status =`, an error class with a status), so the code → status table stays in
// server/http-errors.ts alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ERRORS, RegistryError } from '../../src/oci/errors.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const src = join(root, 'src');
/** The edges that speak HTTP: server/ answers with statuses, cli/ reads the statuses the API answered. */
const HTTP_EDGES = new Set(['server', 'http', 'cli']);

const isStatus = (n: ts.Node) => ts.isNumericLiteral(n) && Number(n.text) >= 100 && Number(n.text) <= 599 && Number.isInteger(Number(n.text));
const STATUS_NAME = /^(status|statusCode|httpStatus)$/;

/** Whether a call or `new` names an error: `new XError(…)`, `xError(…)`, `this.error(…)`, `denied(…)`-style factories are caught by their result in tsc; here the name says it. */
function namesError(callee: ts.Expression): boolean {
  const name = ts.isIdentifier(callee) ? callee.text : ts.isPropertyAccessExpression(callee) ? callee.name.text : '';
  return /error|failure/i.test(name);
}

/** Status literals among an argument's values: itself, a branch of `a ? 409 : 400`, a `status: 400` field. Messages are skipped. */
function statusesIn(node: ts.Node, out: ts.Node[]): void {
  if (ts.isStringLiteralLike(node) || ts.isTemplateExpression(node) || ts.isCallExpression(node)) return;
  if (isStatus(node)) out.push(node);
  ts.forEachChild(node, (c) => statusesIn(c, out));
}

/** The places in one file where an HTTP status literal is given to an error. */
function statusesGivenToErrors(fileName: string, text: string): string[] {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const report = (n: ts.Node, what: string) => {
    const { line } = file.getLineAndCharacterOfPosition(n.getStart(file));
    found.push(`${fileName}:${line + 1}: ${what}: ${n.getText(file)}`);
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isNewExpression(node) || ts.isCallExpression(node)) && namesError(node.expression)) {
      for (const arg of node.arguments ?? []) {
        const hits: ts.Node[] = [];
        statusesIn(arg, hits);
        for (const h of hits) report(h, 'status given to an error');
      }
    }
    // `err.status = 404`, `{ status: 404 }` inside an error class, `readonly status = 404`
    if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(node.left)) {
      if (STATUS_NAME.test(node.left.name.text) && isStatus(node.right) && /err|error|failure/i.test(node.left.expression.getText(file))) report(node, 'status set on an error');
    }
    if (ts.isClassDeclaration(node) && node.heritageClauses?.some((h) => h.types.some((t) => /Error$/.test(t.expression.getText(file))))) {
      for (const m of node.members) {
        if ((ts.isPropertyDeclaration(m) || ts.isParameter(m)) && m.name && STATUS_NAME.test(m.name.getText(file))) report(m, 'an error class with an HTTP status');
        if (ts.isConstructorDeclaration(m)) for (const p of m.parameters) if (STATUS_NAME.test(p.name.getText(file))) report(p, 'an error class with an HTTP status');
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!(dir === src && HTTP_EDGES.has(e.name))) sourceFiles(p, out);
    } else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('the scan finds a status handed to an error, however it is written, and passes a message with numbers', () => {
  const bad = [
    "throw new RegistryError('UNSUPPORTED', 'bad', undefined, 400);",
    "throw new RegistryError('INVALID', m, null, exists ? 409 : 400);",
    'throw apiError(404, "no such app");',
    "throw this.error('x', { status: 403 });",
    "const e = new Error('x'); err.status = 502;",
    'class HttpishError extends Error { readonly status = 418; }',
    'class StatusError extends Error { constructor(m: string, readonly statusCode: number) { super(m); } }',
  ];
  for (const line of bad) assert.ok(statusesGivenToErrors('sample.ts', line).length >= 1, line);
  const good = [
    "throw new RegistryError('INVALID', 'limit must be an integer from 1 to 1000');",
    "throw new RegistryError('INVALID', `body is ${404} bytes; the limit is ${limit.toFixed(200)}`);",
    "throw new RegistryError('BLOB_UNKNOWN', `blob ${digest.slice(0, 200)} is missing`, { size: n });",
    'const wait = setTimeout(done, 500);',
    "class ClusterError extends Error { readonly code = 'E'; }",
  ];
  for (const line of good) assert.deepEqual(statusesGivenToErrors('sample.ts', line), [], line);
});

test('no source file outside server/ and cli/ gives an error an HTTP status', () => {
  const files = sourceFiles(src);
  assert.ok(files.some((f) => f.endsWith(join('oci', 'errors.ts'))) && files.length > 50, 'the domain folders are read');
  assert.ok(!files.some((f) => /^(server|cli)\//.test(relative(src, f))), 'the HTTP edges are not scanned');
  const found = files.flatMap((f) => statusesGivenToErrors(relative(root, f), readFileSync(f, 'utf8')));
  assert.deepEqual(found, [], `HTTP statuses belong in server/http-errors.ts; give the error a code:\n${found.join('\n')}`);
});

test('a RegistryError is a code and a message: it takes no status and has none', () => {
  const e = new RegistryError('INVALID', 'name: expected a string', { field: 'name' });
  assert.deepEqual({ code: e.code, message: e.message, detail: e.detail }, { code: 'INVALID', message: 'name: expected a string', detail: { field: 'name' } });
  assert.equal('status' in e, false);
  assert.equal(new RegistryError('CONFLICT').message, ERRORS.CONFLICT);
  // @ts-expect-error a fourth (status) argument is refused at compile time
  void new RegistryError('INVALID', 'x', undefined, 400);
});
