/**
 * The portal's freeze switch (on the Nodes page): `POST /ui/freeze` and
 * `POST /ui/unfreeze`, forms from a signed-in operator with the session's
 * CSRF token, through the same brakes as `POST /v1/freeze`. A refusal is
 * shown on an error page and audited; success goes back to the Nodes page
 * (post/redirect/get, so a reload does not post again).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { PrincipalRegistry } from '../auth/index.js'
import type { Brakes } from '../brakes/index.js'
import { formRefusal, invalidForm } from './form-refusal.js'
import type { PageRenderer } from './page-render.js'

const FreezeForm = z.object({ _csrf: z.string().optional(), reason: z.string().trim().min(1, 'say why: the reason is what refused agents and Slack read').max(500), scope: z.string().max(128) }).strict()
const UnfreezeForm = z.object({ _csrf: z.string().optional(), scope: z.string().max(128) }).strict()

export default async function freezePageRoutes(app: FastifyInstance, opts: { pages: PageRenderer, brakes: Brakes, principals: PrincipalRegistry }) {
  const { pages, brakes } = opts

  async function act(req: FastifyRequest, reply: FastifyReply, verb: 'freeze' | 'unfreeze'): Promise<FastifyReply> {
    try {
      const form = (verb === 'freeze' ? FreezeForm : UnfreezeForm).safeParse(req.body)
      if (!form.success) {
        const message = form.error.issues.map((i) => `${i.path.join('.') || 'form'}: ${i.message}`).join('; ')
        throw invalidForm(message)
      }
      const f = form.data as { reason?: string, scope: string }
      if (verb === 'freeze') await brakes.freeze(req.principal!, { reason: f.reason as string, scope: f.scope })
      else {
        await brakes.unfreeze(req.principal!, f.scope)
        // Runs the freeze held leave now; each is claimed once across replicas.
        app.writ.approvals.sweep(0).catch((err: unknown) => req.log.error({ err }, 'releasing held runs failed'))
      }
    } catch (err) {
      const e = await formRefusal(req, err, verb)
      return pages.page(req, reply, '@error', { title: verb === 'freeze' ? 'Not frozen' : 'Not unfrozen', nav: 'nodes' }, {
        heading: verb === 'freeze' ? 'Nothing was frozen' : 'Nothing was unfrozen', code: e.code, message: e.message, hint: 'Go back to the Nodes page and try again.',
      }, e.statusCode)
    }
    return reply.redirect(`/ui/nodes?brakes=${verb === 'freeze' ? 'frozen' : 'unfrozen'}#freeze`, 303)
  }

  app.post('/freeze', { preHandler: app.csrfProtection }, (req, reply) => act(req, reply, 'freeze'))
  app.post('/unfreeze', { preHandler: app.csrfProtection }, (req, reply) => act(req, reply, 'unfreeze'))
}
