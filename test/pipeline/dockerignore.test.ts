// .dockerignore with Docker's semantics: globs, `**`, directories excluding their contents, `!` exceptions
// where the last matching rule wins, comments and cleaned paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerIgnore } from '../../src/pipeline/dockerignore.js';

function excluded(rules: string, paths: string[]): string[] {
  const ignore = DockerIgnore.parse(rules);
  return paths.filter((p) => ignore.excludes(p));
}

test('plain names and single-level globs', () => {
  assert.deepEqual(excluded('secret.txt\n*.md', ['secret.txt', 'README.md', 'docs/guide.md', 'main.go']), ['secret.txt', 'README.md']);
  assert.deepEqual(excluded('*/*.md', ['README.md', 'docs/guide.md', 'docs/a/b.md']), ['docs/guide.md']);
  assert.deepEqual(excluded('file?.txt', ['file1.txt', 'file12.txt', 'file/.txt']), ['file1.txt']);
  assert.deepEqual(excluded('[a-c].txt\n[!x]y', ['b.txt', 'd.txt', 'zy', 'xy']), ['b.txt', 'zy']);
});

test('a rule matching a directory excludes everything under it', () => {
  assert.deepEqual(excluded('node_modules\n/build/', ['node_modules/a/index.js', 'build/out.o', 'src/build/x', 'src/node_modules/y']), [
    'node_modules/a/index.js',
    'build/out.o',
  ]);
});

test('** spans any number of directories, none included', () => {
  const rules = '**/*.log\ncache/**';
  assert.deepEqual(excluded(rules, ['a.log', 'x/y/z.log', 'cache/a', 'cache/a/b', 'cache', 'logs/a.txt']), ['a.log', 'x/y/z.log', 'cache/a', 'cache/a/b']);
  assert.deepEqual(excluded('a/**/b', ['a/b', 'a/x/b', 'a/x/y/b', 'a/x/c']), ['a/b', 'a/x/b', 'a/x/y/b']);
});

test('exceptions bring files back; the last matching rule wins', () => {
  assert.deepEqual(excluded('*.md\n!README.md', ['README.md', 'CHANGES.md']), ['CHANGES.md']);
  assert.deepEqual(excluded('!README.md\n*.md', ['README.md', 'CHANGES.md']), ['README.md', 'CHANGES.md']);
  assert.deepEqual(excluded('docs\n!docs/keep.txt', ['docs/keep.txt', 'docs/drop.txt']), ['docs/drop.txt']);
  assert.equal(DockerIgnore.parse('docs\n!docs/keep.txt').hasExceptions, true);
  assert.equal(DockerIgnore.parse('docs').hasExceptions, false);
});

test('comments, blank lines, ./ and leading slashes', () => {
  assert.deepEqual(excluded('# a comment\n\n  ./tmp  \n/out\n', ['tmp/x', 'out', '# a comment']), ['tmp/x', 'out']);
  assert.deepEqual(excluded('a/../b', ['b', 'a']), ['b']);
});

test('regular-expression characters in names are literal', () => {
  assert.deepEqual(excluded('a+b.(1)', ['a+b.(1)', 'aab.(1)', 'a+bx(1)']), ['a+b.(1)']);
  assert.deepEqual(excluded('\\*literal', ['*literal', 'xliteral']), ['*literal']);
});
