import type { PasskeyAssertion } from '@writ/packs/protocol'

export interface AssertionOverrides { rpId?: string, origin?: string, type?: string, userPresent?: boolean, userVerified?: boolean }

export interface SoftwareAuthenticator {
  credentialId: string
  /** COSE public key, base64url (what the approver registry stores). */
  publicKey: string
  /** The private key as PKCS#8 DER, base64: what Chromium's virtual authenticator imports (WebAuthn.addCredential). */
  privateKeyPkcs8: string
  assert(challenge: string, over?: AssertionOverrides): PasskeyAssertion
}

export function createSoftwareAuthenticator(opts: { rpId: string, origin: string }): SoftwareAuthenticator
