/**
 * `GET /v1/freeze` (anyone signed in: an agent may ask why it is refused),
 * `POST /v1/freeze` and `DELETE /v1/freeze?scope=` (operators only: an agent
 * gets 403 and nothing changes), `GET /v1/budgets` (operators see every
 * budget, an agent its own).
 */
import type { FastifyInstance } from 'fastify'
import { principalOf, requireOperator } from '../auth/index.js'
import { Forbidden, parseOrThrow } from '../http/index.js'
import type { Brakes } from './brakes.js'
import { FreezeRequestSchema, UnfreezeQuerySchema } from './freeze-schemas.js'

const operatorsOnly = (what: string) => new Forbidden(`only operators ${what}; an agent never does`)

export default async function brakeRoutes(app: FastifyInstance, opts: { brakes: Brakes, releaseHeld: () => void }) {
  const { brakes } = opts

  app.get('/freeze', async (req) => {
    principalOf(req)
    return { frozen: brakes.freezes.length > 0, freezes: brakes.freezes }
  })

  app.post('/freeze', async (req) => {
    if (principalOf(req).kind !== 'operator') throw operatorsOnly('freeze')
    const principal = requireOperator(req)
    const body = parseOrThrow(FreezeRequestSchema, req.body, 'body')
    return { freeze: await brakes.freeze(principal, body) }
  })

  app.delete('/freeze', async (req) => {
    if (principalOf(req).kind !== 'operator') throw operatorsOnly('unfreeze')
    const principal = requireOperator(req)
    const { scope } = parseOrThrow(UnfreezeQuerySchema, req.query, 'query')
    const lifted = await brakes.unfreeze(principal, scope)
    opts.releaseHeld()
    return { unfrozen: lifted }
  })

  app.get('/budgets', async (req) => {
    const principal = principalOf(req)
    const ids = principal.kind === 'operator' ? brakes.budgeted : brakes.budgeted.filter((id) => id === principal.id)
    return { budgets: await Promise.all(ids.map(async (id) => brakes.budgetOf(id))) }
  })
}
