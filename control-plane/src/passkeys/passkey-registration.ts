/**
 * Registering a passkey from the portal (WebAuthn registration through
 * @simplewebauthn/server): options for the browser, then the verification of
 * what the authenticator returned against the challenge kept in the session.
 * User verification is required, as every approval will require it.
 */
import { createHash } from 'node:crypto'
import { generateRegistrationOptions, verifyRegistrationResponse } from '@simplewebauthn/server'
import { z } from 'zod'
import type { Principal } from '../auth/index.js'
import type { PasskeyRegistration } from './passkey-store.js'
import type { RelyingParty } from './relying-party.js'

const B64u = z.string().min(1).max(16_384).regex(/^[A-Za-z0-9_-]+$/)

/** What the browser posts back (RegistrationResponseJSON), parsed once at the edge. */
export const RegistrationResponseSchema = z.object({
  id: B64u,
  rawId: B64u,
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  response: z.object({
    clientDataJSON: B64u,
    attestationObject: B64u,
    authenticatorData: B64u.optional(),
    transports: z.array(z.string().max(32)).max(10).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: B64u.optional(),
  }).strict(),
}).strict()
export type RegistrationResponse = z.infer<typeof RegistrationResponseSchema>

export function registrationOptions(rp: RelyingParty, operator: Principal, existing: readonly PasskeyRegistration[]) {
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: operator.id,
    userDisplayName: operator.person,
    // Stable per operator, so one authenticator holds one writ credential per operator.
    userID: new Uint8Array(createHash('sha256').update(`writ-operator:${operator.id}`).digest().subarray(0, 16)),
    attestationType: 'none',
    excludeCredentials: existing.map((r) => ({ id: r.credential_id, transports: r.transports })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    timeout: 120_000,
  })
}

export type RegistrationOutcome = { ok: true, registration: Omit<PasskeyRegistration, 'operator' | 'groups' | 'label' | 'registered_at' | 'signed_in_via'> } | { ok: false, message: string }

/** Verifies the authenticator's answer to the challenge the session issued. */
export async function verifyRegistration(rp: RelyingParty, response: RegistrationResponse, expectedChallenge: string): Promise<RegistrationOutcome> {
  try {
    const v = await verifyRegistrationResponse({
      response: { ...response, clientExtensionResults: response.clientExtensionResults as Record<string, never> },
      expectedChallenge, expectedOrigin: rp.origins, expectedRPID: rp.id, requireUserVerification: true,
    })
    if (!v.verified) return { ok: false, message: 'the authenticator\'s answer does not verify' }
    const info = v.registrationInfo
    return {
      ok: true,
      registration: {
        credential_id: info.credential.id, public_key: Buffer.from(info.credential.publicKey).toString('base64url'), aaguid: info.aaguid,
        transports: response.response.transports ?? [], backed_up: info.credentialBackedUp,
      },
    }
  } catch (err) {
    return { ok: false, message: (err as Error).message }
  }
}
