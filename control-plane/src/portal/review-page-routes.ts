/**
 * The break-glass reviews page: every review item, newest first, and the
 * acknowledge form for the ones a signed-in approver may acknowledge. The
 * acknowledgement goes through the one break-glass service; a refusal shows
 * the page again with the typed reason, and is audited.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { formIssues, formRefusal, invalidForm } from './form-refusal.js'
import { ReviewIdParamsSchema, type BreakGlass } from '../break-glass/index.js'
import type { PageRenderer } from './page-render.js'

const AckForm = z.object({ _csrf: z.string().optional(), comment: z.string().trim().max(2000).optional() }).strict()

export default async function reviewPageRoutes(app: FastifyInstance, opts: { pages: PageRenderer, breakGlass: BreakGlass }) {
  const { pages, breakGlass } = opts

  async function show(req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown> = {}, status = 200): Promise<FastifyReply> {
    return pages.page(req, reply, '@reviews', { title: 'Break-glass reviews', nav: 'reviews' }, { reviews: await breakGlass.list(false), ...extra }, status)
  }

  app.get('/reviews', async (req, reply) => show(req, reply, typeof (req.query as { done?: unknown }).done === 'string' ? { flash: 'Acknowledged.' } : {}))

  app.post('/reviews/:id/ack', { preHandler: app.csrfProtection }, async (req, reply) => {
    const raw = String((req.params as { id?: unknown }).id ?? '').slice(0, 64)
    try {
      const params = ReviewIdParamsSchema.safeParse(req.params)
      if (!params.success) throw Object.assign(new Error(`review "${raw}" does not exist`), { code: 'WRIT_ERR_REVIEW_NOT_FOUND', statusCode: 404 })
      const form = AckForm.safeParse(req.body)
      if (!form.success) throw invalidForm(formIssues(form.error))
      await breakGlass.acknowledge(req.principal!, params.data.id, form.data.comment || undefined)
    } catch (err) {
      const e = await formRefusal(req, err, 'acknowledgement', { review_id: raw })
      return show(req, reply, { error: { code: e.code, message: e.message } }, e.statusCode)
    }
    return reply.redirect('/ui/reviews?done=1', 303)
  })
}
