/**
 * `GET /v1/approvers/registrations`: what `writ approvers export` turns into
 * the signed registry — every registered passkey with its operator's person,
 * principal ids and groups, the relying party, the dispatch key id (so the
 * export refuses to sign with it), and the serial of the newest registry
 * published (so the export mints the next). Operators only. Public keys are not
 * secret; the administrator's review of this list before signing is the
 * point where a registration becomes effective.
 */
import type { FastifyInstance } from 'fastify'
import { requireOperator } from '../auth/index.js'
import { PasskeyConfigError, relyingParty } from './relying-party.js'

export default async function approverRoutes(app: FastifyInstance) {
  const { passkeys, principals, dispatcher, config } = app.writ

  app.get('/approvers/registrations', async (req) => {
    requireOperator(req)
    // Without passkeys configured there is nothing registered yet; the first
    // (empty) registry is exported from here all the same.
    let rp: { id: string, origins: string[] } | null = passkeys?.rp ?? null
    try { rp ??= relyingParty(config) } catch (err) {
      // public_url is no host name WebAuthn accepts: the policy file has to name the relying party.
      if (!(err instanceof PasskeyConfigError)) throw err
    }
    const groupsFromIdp = config.portal.oidc?.groups_claim !== undefined
    const registrations = (passkeys ? await passkeys.store.list() : []).map((r) => {
      const p = principals.get(r.operator)
      return {
        ...r,
        operator_configured: p !== undefined && p.kind === 'operator',
        person: p?.person ?? r.operator,
        principals: p ? principals.idsOfPerson(p.person) : [r.operator],
        // Groups from config are authoritative now; groups an identity provider gave are those of the registration.
        groups: p && !groupsFromIdp ? [...p.groups] : r.groups,
      }
    })
    return {
      relying_party: rp ? { id: rp.id, origins: rp.origins } : null,
      dispatch_key_id: dispatcher.keyId,
      passkeys_configured: passkeys !== undefined,
      published: passkeys?.registry && passkeys.mark
        ? { issued_at: passkeys.registry.issued_at, serial: passkeys.mark.serial, digest: passkeys.mark.digest, expires_at: passkeys.registry.expires_at ?? null, approvers: passkeys.registry.approvers.length }
        : null,
      // The newest registry any instance accepted (its KV record): the export mints the serial after it.
      accepted: (await passkeys?.accepted()) ?? null,
      registrations,
    }
  })
}
