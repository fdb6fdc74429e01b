/**
 * `GET /v1/approvers/registrations`: what `writ approvers export` turns into
 * the signed registry — every registered passkey with its operator's person,
 * principal ids and groups, the relying party, and the dispatch key id (so
 * the export refuses to sign with it). Operators only. Public keys are not
 * secret; the administrator's review of this list before signing is the
 * point where a registration becomes effective.
 */
import type { FastifyInstance } from 'fastify'
import { requireOperator } from '../auth/index.js'
import { Unavailable } from '../http/index.js'

export default async function approverRoutes(app: FastifyInstance) {
  const { passkeys, principals, dispatcher, config } = app.writ

  app.get('/approvers/registrations', async (req) => {
    requireOperator(req)
    if (!passkeys) throw new Unavailable('passkeys are not configured on this control plane (config passkeys)')
    const groupsFromIdp = config.portal.oidc?.groups_claim !== undefined
    const registrations = (await passkeys.store.list()).map((r) => {
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
      relying_party: { id: passkeys.rp.id, origins: passkeys.rp.origins },
      dispatch_key_id: dispatcher.keyId,
      published: passkeys.registry ? { issued_at: passkeys.registry.issued_at, approvers: passkeys.registry.approvers.length } : null,
      registrations,
    }
  })
}
