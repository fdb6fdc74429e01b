/**
 * Ed25519 signing of writs and cancels over canonical JSON (node:crypto).
 * Runners trust a list of public keys so keys can be rotated.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto'
import { canonicalJson } from '../canonical-json.js'
import type { Cancel, SignedCancel, SignedWrit, Writ } from './messages.js'

export interface SigningKey { keyId: string, privateKey: KeyObject }
export interface TrustedKey { keyId: string, publicKey: KeyObject }

/** A key id is the first 16 hex characters of the SHA-256 of the public key (SPKI DER). */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16)
}

export function generateSigningKeyPair(): { privatePem: string, publicPem: string, keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  }
}

export function loadSigningKey(privatePem: string): SigningKey {
  const privateKey = createPrivateKey(privatePem)
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('signing key must be an Ed25519 private key (PKCS#8 PEM)')
  return { keyId: keyIdOf(createPublicKey(privateKey)), privateKey }
}

export function loadTrustedKey(publicPem: string): TrustedKey {
  const publicKey = createPublicKey(publicPem)
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new TypeError('trusted key must be an Ed25519 public key (SPKI PEM)')
  return { keyId: keyIdOf(publicKey), publicKey }
}

/** Splits a PEM bundle (several keys in one file) into single PEM blocks. */
export function splitPemBundle(text: string): string[] {
  return text.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? []
}

export function newNonce(): string {
  return randomBytes(16).toString('hex')
}

/** A run's approval-binding salt: 32 CSPRNG bytes, hex. */
export function newBindingSalt(): string {
  return randomBytes(32).toString('hex')
}

export function signWrit(writ: Writ, key: SigningKey): SignedWrit & { sig: string } {
  const sig = sign(null, Buffer.from(canonicalJson(writ)), key.privateKey).toString('base64')
  return { writ, key_id: key.keyId, sig }
}

export function signCancel(cancel: Cancel, key: SigningKey): SignedCancel {
  const sig = sign(null, Buffer.from(canonicalJson(cancel)), key.privateKey).toString('base64')
  return { cancel, key_id: key.keyId, sig }
}

export type SignatureCheck = { ok: true } | { ok: false, code: 'unknown_key' | 'bad_signature', message: string }

/** Verifies a signature over canonical JSON of `payload` with the trusted key named by `keyId`. */
export function verifySignature(payload: unknown, keyId: string, sig: string, trusted: readonly TrustedKey[]): SignatureCheck {
  const key = trusted.find((k) => k.keyId === keyId)
  if (!key) return { ok: false, code: 'unknown_key', message: `signing key ${keyId} is not trusted by this runner` }
  let good = false
  try {
    good = verify(null, Buffer.from(canonicalJson(payload)), key.publicKey, Buffer.from(sig, 'base64'))
  } catch { good = false }
  return good ? { ok: true } : { ok: false, code: 'bad_signature', message: 'signature does not verify against the named key' }
}
