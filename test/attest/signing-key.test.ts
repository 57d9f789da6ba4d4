// The CI's signing key: read from a file or from PEM text, refused when encrypted or of another algorithm, and
// made by `wharf signer keygen` as two files, the private one readable by its owner only and never overwritten.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope, verifyEnvelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';
import { loadSigningKey, newKeyPair } from '../../src/attest/signing-key.js';
import { runWharf } from '../support/server.js';

test('a signing key is read from a file or from PEM text, and signs what its public key verifies', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-signing-key-'));
  try {
    for (const algorithm of ['ed25519', 'ecdsa-p256'] as const) {
      const pair = newKeyPair(algorithm);
      await writeFile(join(dir, `${algorithm}.key`), pair.privateKey, { mode: 0o600 });
      for (const source of [join(dir, `${algorithm}.key`), pair.privateKey]) {
        const signer = await loadSigningKey(source);
        assert.equal(signer.algorithm, algorithm);
        assert.equal(signer.keyid, pair.keyid);
        const publicKey = createPublicKey(pair.publicKey);
        assert.equal(keyIdOf(publicKey), pair.keyid);
        const env = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from('{}'), signer);
        assert.ok(verifyEnvelope(env, [{ keyid: pair.keyid, name: 'ci', publicKey }]).ok);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a signing key that is missing, encrypted, not a key or of another algorithm is refused with a reason', async () => {
  await assert.rejects(loadSigningKey('/nonexistent/ci.key'), /cannot read the signing key \/nonexistent\/ci.key: no such file/);
  const encrypted = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString();
  await assert.rejects(loadSigningKey(encrypted), /the signing key is encrypted/);
  await assert.rejects(loadSigningKey('-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n'), /not a PEM private key/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await assert.rejects(loadSigningKey(rsa), /a rsa key: trusted signers use Ed25519 or ECDSA P-256 keys/);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await assert.rejects(loadSigningKey(p384), /an EC key on secp384r1/);
});

test('wharf signer keygen writes NAME.key (0600) and NAME.pub, and never overwrites them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-keygen-'));
  try {
    const made = await runWharf(['signer', 'keygen', 'ci', '--algorithm', 'ecdsa-p256', '--json'], { cwd: dir });
    assert.equal(made.code, 0, made.stderr);
    const out = JSON.parse(made.stdout) as { keyid: string; algorithm: string };
    assert.equal(out.algorithm, 'ecdsa-p256');
    assert.equal((await stat(join(dir, 'ci.key'))).mode & 0o777, 0o600);
    const signer = await loadSigningKey(join(dir, 'ci.key'));
    assert.equal(signer.keyid, out.keyid);
    assert.equal(keyIdOf(createPublicKey(await readFile(join(dir, 'ci.pub'), 'utf8'))), out.keyid, 'the .pub is the public half');
    const before = await readFile(join(dir, 'ci.key'), 'utf8');
    const again = await runWharf(['signer', 'keygen', 'ci'], { cwd: dir });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^wharf signer: ci\.key exists: not overwritten\n$/);
    assert.equal(await readFile(join(dir, 'ci.key'), 'utf8'), before);
    const bad = await runWharf(['signer', 'keygen', 'ci2', '--algorithm', 'rsa'], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--algorithm is ed25519 or ecdsa-p256, not rsa/);
    const missing = await runWharf(['signer', 'add', 'x', '--public-key', join(dir, 'ci.pub'), '--apps', 'a'], { cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--kinds is required/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
