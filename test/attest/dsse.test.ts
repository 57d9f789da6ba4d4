// DSSE: the pre-authentication encoding from the spec, Ed25519 signing, and the refusals that matter —
// an altered payload, another key, a changed payload type, a malformed envelope.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { IN_TOTO_PAYLOAD_TYPE, pae, parseEnvelope, signEnvelope, verifyEnvelope, EnvelopeError, type TrustedKey } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';

function keyPair(name: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyid = keyIdOf(publicKey);
  return { signer: { keyid, privateKey }, trusted: { keyid, name, publicKey } satisfies TrustedKey };
}

test('PAE matches the DSSE specification example', () => {
  assert.equal(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
});

test('PAE counts bytes, not characters', () => {
  assert.equal(pae('t', Buffer.from('é')).toString(), 'DSSEv1 1 t 2 é');
  assert.equal(pae('', Buffer.alloc(0)).toString(), 'DSSEv1 0  0 ');
});

test('a signed envelope verifies with the signing key and yields the payload', () => {
  const k = keyPair('server');
  const payload = Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}');
  const env = signEnvelope(IN_TOTO_PAYLOAD_TYPE, payload, k.signer);
  assert.equal(env.payloadType, IN_TOTO_PAYLOAD_TYPE);
  assert.equal(env.signatures[0]!.keyid, k.signer.keyid);
  const v = verifyEnvelope(parseEnvelope(Buffer.from(JSON.stringify(env))), [k.trusted]);
  assert.ok(v.ok);
  assert.deepEqual(v.payload, payload);
  assert.equal(v.key.name, 'server');
});

test('an altered payload with the original signature is refused', () => {
  const k = keyPair('server');
  const env = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from('{"exitCode":1}'), k.signer);
  const altered = { ...env, payload: Buffer.from('{"exitCode":0}').toString('base64') };
  const v = verifyEnvelope(altered, [k.trusted]);
  assert.equal(v.ok, false);
  assert.match(!v.ok ? v.reason : '', /altered after signing/);
});

test('a changed payload type breaks the signature (PAE binds it)', () => {
  const k = keyPair('server');
  const env = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from('{}'), k.signer);
  assert.equal(verifyEnvelope({ ...env, payloadType: 'application/json' }, [k.trusted]).ok, false);
});

test('a signature by an untrusted key is refused, even when it claims a trusted key id', () => {
  const server = keyPair('server');
  const forger = keyPair('forger');
  const env = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from('{}'), forger.signer);
  const v = verifyEnvelope(env, [server.trusted]);
  assert.equal(v.ok, false);
  assert.match(!v.ok ? v.reason : '', /not signed by a trusted key/);
  const lying = { ...env, signatures: [{ keyid: server.signer.keyid, sig: env.signatures[0]!.sig }] };
  assert.equal(verifyEnvelope(lying, [server.trusted]).ok, false);
});

test('any trusted key verifies, whatever the key id hint says', () => {
  const server = keyPair('server');
  const ci = keyPair('ci');
  const env = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from('{}'), ci.signer);
  const noHint = { ...env, signatures: [{ sig: env.signatures[0]!.sig }] };
  const v = verifyEnvelope(noHint, [server.trusted, ci.trusted]);
  assert.ok(v.ok);
  assert.equal(v.key.name, 'ci');
});

test('an envelope without signatures or with a bad shape is refused', () => {
  const k = keyPair('server');
  assert.equal(verifyEnvelope({ payload: '', payloadType: IN_TOTO_PAYLOAD_TYPE, signatures: [] }, [k.trusted]).ok, false);
  assert.throws(() => parseEnvelope(Buffer.from('not json')), EnvelopeError);
  assert.throws(() => parseEnvelope(Buffer.from('{"payload":"","payloadType":"x"}')), EnvelopeError);
  assert.throws(() => parseEnvelope(Buffer.from('{"payload":"","payloadType":"x","signatures":[{"sig":5}]}')), EnvelopeError);
});

test('ECDSA P-256 keys (as cosign generate-key-pair makes) sign and verify: SHA-256 over the PAE, DER signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyid = keyIdOf(publicKey);
  const trusted = { keyid, name: 'cosign', publicKey } satisfies TrustedKey;
  const payload = Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}');
  const ours = signEnvelope(IN_TOTO_PAYLOAD_TYPE, payload, { keyid, privateKey });
  assert.ok(verifyEnvelope(ours, [trusted]).ok);
  // Signed the way another DSSE implementation does it, without Wharf's code: createSign('SHA256') over the PAE.
  const sig = createSign('SHA256').update(pae(IN_TOTO_PAYLOAD_TYPE, payload)).sign(privateKey).toString('base64');
  const theirs = { payload: payload.toString('base64'), payloadType: IN_TOTO_PAYLOAD_TYPE, signatures: [{ keyid: '', sig }] };
  const v = verifyEnvelope(theirs, [trusted]);
  assert.ok(v.ok);
  assert.equal(v.key.name, 'cosign');
  // Another hash, or bytes that are not DER at all, are no match (and no crash).
  const sha384 = createSign('SHA384').update(pae(IN_TOTO_PAYLOAD_TYPE, payload)).sign(privateKey).toString('base64');
  assert.equal(verifyEnvelope({ ...theirs, signatures: [{ sig: sha384 }] }, [trusted]).ok, false);
  assert.equal(verifyEnvelope({ ...theirs, signatures: [{ sig: Buffer.from('not a signature').toString('base64') }] }, [trusted]).ok, false);
});
