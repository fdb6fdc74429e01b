// A software WebAuthn authenticator (ES256, P-256) for tests and the bench:
// it makes the assertions a platform authenticator would — authenticator data
// (rpId hash, flags, counter), client data JSON (type, challenge, origin) and
// an ECDSA signature over `authData || SHA-256(clientDataJSON)` — so runner
// checks can be exercised without a browser. The browser tests use
// Chromium's own virtual authenticator instead. Plain JS (with a .d.ts) so
// bench/ can import it too.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { isoCBOR } from '@simplewebauthn/server/helpers'

const FLAG_UP = 0x01
const FLAG_UV = 0x04

export function createSoftwareAuthenticator({ rpId, origin }) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' })
  // COSE_Key: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
  const cose = isoCBOR.encode(new Map([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x, 'base64url')], [-3, Buffer.from(jwk.y, 'base64url')]]))
  const credentialId = randomBytes(16).toString('base64url')
  let counter = 0
  return {
    credentialId,
    publicKey: Buffer.from(cose).toString('base64url'),
    /** The private key as PKCS#8 DER, base64: what Chromium's virtual authenticator imports (WebAuthn.addCredential). */
    privateKeyPkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    /** Signs `challenge` (base64url); `over` changes what a forger would change. */
    assert(challenge, over = {}) {
      counter += 1
      const flags = (over.userPresent === false ? 0 : FLAG_UP) | (over.userVerified === false ? 0 : FLAG_UV)
      const counterBytes = Buffer.alloc(4)
      counterBytes.writeUInt32BE(counter)
      const authData = Buffer.concat([createHash('sha256').update(over.rpId ?? rpId).digest(), Buffer.from([flags]), counterBytes])
      const clientData = Buffer.from(JSON.stringify({ type: over.type ?? 'webauthn.get', challenge, origin: over.origin ?? origin, crossOrigin: false }))
      const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(clientData).digest()]), privateKey)
      return {
        credential_id: credentialId,
        authenticator_data: authData.toString('base64url'),
        client_data_json: clientData.toString('base64url'),
        signature: signature.toString('base64url'),
      }
    },
  }
}
