/**
 * MCP authorization in the portal: the consent page an MCP client's
 * authorization request lands on (the person is signed in by then, through
 * the portal's own sign-in), and "Connected agents", where a person revokes
 * what they connected. Consent and revocation are audited.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { OAuthServer } from '../oauth/index.js'
import { durationMs } from '../config.js'
import type { PageRenderer } from './page-render.js'

const Uid = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/)
const ConsentForm = z.object({ _csrf: z.string().optional(), decision: z.enum(['allow', 'deny']), agent: z.string().max(128).optional() }).strict()
const RevokeForm = z.object({ _csrf: z.string().optional(), grant_id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/) }).strict()

/** "1h", "15m": how the consent page says how long an access token lasts. */
function spoken(text: string): string {
  const ms = durationMs(text)
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} hour(s)` : ms % 60_000 === 0 ? `${ms / 60_000} minute(s)` : `${Math.round(ms / 1000)} second(s)`
}

export default async function oauthPageRoutes(app: FastifyInstance, opts: { pages: PageRenderer, oauth: OAuthServer }) {
  const { audit, config } = app.writ
  const { pages, oauth } = opts
  const accessTtl = spoken(config.oauth?.access_token_ttl ?? '1h')

  async function consentPage(req: FastifyRequest, reply: FastifyReply, uid: string, error?: string, status = 200) {
    const me = req.principal!
    const details = await oauth.interaction(req.raw, reply.raw, uid)
    if (!details) return pages.page(req, reply, '@error', { title: 'Refused' }, { heading: 'Refused', code: 'WRIT_ERR_OAUTH_INTERACTION', message: 'This authorization request has ended or was not started in this browser: start connecting the client again.', hint: '' }, 404)
    const clientId = String(details.params.client_id ?? '')
    const client = await oauth.client(clientId) ?? { id: clientId, name: clientId }
    const redirectUri = String(details.params.redirect_uri ?? '')
    // The form's redirects end at the client's redirect URI: the page's form-action must allow that origin.
    // A native app's custom scheme (cursor://…) has no origin: its scheme is the source.
    const parsed = URL.canParse(redirectUri) ? new URL(redirectUri) : undefined
    const target = parsed ? (parsed.origin !== 'null' ? parsed.origin : /^[a-z][a-z0-9+.-]*:$/.test(parsed.protocol) ? parsed.protocol : undefined) : undefined
    const csp = String(reply.getHeader('content-security-policy') ?? '')
    if (target && csp) reply.header('content-security-policy', csp.replace(/form-action 'self'/, `form-action 'self' ${target}`))
    return pages.page(req, reply, '@oauth-consent', { title: `Connect ${client.name}` }, {
      uid, client, redirectUri, resource: oauth.resource, operator: me.id, person: me.person, accessTtl,
      until: new Date(Date.now() + oauth.grantTtlMs).toISOString(),
      agents: oauth.eligibleAgents(me).map((a) => ({ id: a.id, groups: [...a.groups] })),
      ...(error ? { error } : {}),
    }, status)
  }

  app.get('/oauth/consent/:uid', async (req, reply) => {
    const uid = Uid.safeParse((req.params as { uid: unknown }).uid)
    return consentPage(req, reply, uid.success ? uid.data : '-')
  })

  app.post('/oauth/consent/:uid', { preHandler: app.csrfProtection }, async (req, reply) => {
    const me = req.principal!
    const uid = Uid.safeParse((req.params as { uid: unknown }).uid)
    const form = ConsentForm.safeParse(req.body)
    const details = uid.success ? await oauth.interaction(req.raw, reply.raw, uid.data) : undefined
    if (!uid.success || !details) return consentPage(req, reply, '-')
    if (!form.success) return consentPage(req, reply, uid.data, 'Choose Allow or Decline.', 400)
    const clientId = String(details.params.client_id ?? '')
    if (form.data.decision === 'deny') {
      const returnTo = await oauth.decline(req.raw, reply.raw)
      req.log.info({ operator: me.id, client: clientId }, 'OAuth connection declined')
      return reply.redirect(returnTo, 303)
    }
    const agent = oauth.eligibleAgents(me).find((a) => a.id === form.data.agent)
    if (!agent) return consentPage(req, reply, uid.data, `You may not connect a client as "${form.data.agent ?? ''}": choose one of the agents listed.`, 403)
    const { returnTo, grantId } = await oauth.consent(req.raw, reply.raw, clientId, agent, me)
    await audit.append({
      type: 'oauth.granted', actor: { id: me.id, kind: 'operator' },
      data: { client_id: clientId, agent: agent.id, person: me.person, grant_id: grantId, resource: oauth.resource, until: new Date(Date.now() + oauth.grantTtlMs).toISOString() },
    })
    req.log.info({ operator: me.id, agent: agent.id, client: clientId }, 'OAuth connection granted')
    return reply.redirect(returnTo, 303)
  })

  async function connectionsPage(req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown> = {}, status = 200) {
    const connections = await oauth.connections(req.principal!)
    return pages.page(req, reply, '@oauth-connections', { title: 'Connected agents', nav: 'connections' }, { connections, ...extra }, status)
  }

  app.get('/oauth/connections', async (req, reply) => {
    const q = req.query as { revoked?: unknown }
    return connectionsPage(req, reply, q.revoked !== undefined ? { flash: 'Connection revoked: the client is refused from its next call.' } : {})
  })

  app.post('/oauth/connections/revoke', { preHandler: app.csrfProtection }, async (req, reply) => {
    const me = req.principal!
    const form = RevokeForm.safeParse(req.body)
    const revoked = form.success ? await oauth.revoke(me, form.data.grant_id) : undefined
    if (!revoked) return connectionsPage(req, reply, { error: 'You have no connection with that id (it may have been revoked already).' }, 404)
    await audit.append({ type: 'oauth.revoked', actor: { id: me.id, kind: 'operator' }, data: { client_id: revoked.clientId, agent: revoked.agent, grant_id: revoked.grantId } })
    req.log.info({ operator: me.id, agent: revoked.agent, client: revoked.clientId }, 'OAuth connection revoked')
    return reply.redirect('/ui/oauth/connections?revoked=1', 303)
  })
}
