/**
 * writ as the OAuth 2.1 authorization server for its own `/mcp` (MCP
 * authorization): oidc-provider, configured for authorization code + PKCE S256
 * only, opaque access tokens bound to the exact `/mcp` URL (RFC 8707) that
 * last at most an hour, rotating refresh tokens, `iss` in authorization
 * responses (RFC 9207), client ID metadata documents from allow-listed hosts
 * (oidc-provider fetches them: https only, no redirects followed, special-use
 * addresses refused, 2.5 s and a size limit) and, by config, dynamic client
 * registration. The person consents on a portal page (oauth-page-routes.ts);
 * the grant's account is "agent:operator", so a token acts as that agent on
 * behalf of that operator's person.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { NatsConnection } from '@nats-io/transport-node'
import type Provider from 'oidc-provider'
import type { Configuration, KoaContextWithOIDC, errors as OidcErrors } from 'oidc-provider'
import type { Logger } from 'pino'
import type { Principal, PrincipalRegistry } from '../auth/index.js'
import { durationMs, publicUrl, type Config, type OAuthConfig } from '../config.js'
import { OAuthStore } from './oauth-store.js'

/** The one scope: calling writ's MCP tools. */
export const MCP_SCOPE = 'mcp'
const INTERACTION_S = 10 * 60

/** A grant the portal lists: who connected which client as which agent, until when. */
export interface Connection { grantId: string, clientId: string, clientName: string, agent: string, operator: string, grantedAt: string, expiresAt: string | undefined }

/** What a presented bearer token turned out to be. */
export type TokenCheck = { ok: true, principal: Principal } | { ok: false, why: string }

export class OAuthServer {
  /** `<public_url>/oauth`: the issuer, where oidc-provider answers. */
  readonly issuer: string
  /** `<public_url>/mcp`: the one resource tokens are for. */
  readonly resource: string
  /** RFC 9728 protected-resource metadata for `/mcp`. */
  readonly resourceMetadataUrl: string
  readonly grantTtlMs: number

  private constructor(
    readonly provider: Provider,
    private readonly store: OAuthStore,
    private readonly principals: PrincipalRegistry,
    base: string, grantTtlMs: number,
  ) {
    this.issuer = `${base}/oauth`
    this.resource = `${base}/mcp`
    this.resourceMetadataUrl = `${base}/.well-known/oauth-protected-resource/mcp`
    this.grantTtlMs = grantTtlMs
  }

  /**
   * Builds the authorization server. `cookieKey` signs oidc-provider's own
   * cookies (the interaction under way); replicas need the same one, so it
   * comes from the portal's session key.
   */
  static async open(config: Config & { oauth: OAuthConfig }, principals: PrincipalRegistry, nc: NatsConnection, cookieKey: Buffer, log: Logger): Promise<OAuthServer> {
    const base = publicUrl(config)
    const o = config.oauth
    const grantTtlMs = durationMs(o.grant_ttl)
    // Loaded only when MCP authorization is on: a control plane (or a `writ` command) without it never imports it.
    const oidc = await import('oidc-provider')
    const store = await OAuthStore.open(nc, config.jetstream.replicas, grantTtlMs + 3_600_000, (detail) => new oidc.errors.InvalidGrant(detail))
    const resource = `${base}/mcp`
    const provider = new oidc.default(`${base}/oauth`, providerConfiguration(o, resource, store, cookieKey, grantTtlMs, oidc.errors))
    // Behind an https front (public_url is https) the scheme comes from X-Forwarded-Proto.
    provider.proxy = base.startsWith('https://')
    provider.on('server_error', (_ctx: unknown, err: Error) => log.error({ err }, 'OAuth authorization server error'))
    return new OAuthServer(provider, store, principals, base, grantTtlMs)
  }

  /** oidc-provider's request handler, for requests whose URL is already relative to `/oauth`. */
  handler(): (req: IncomingMessage, res: ServerResponse) => void {
    return this.provider.callback() as unknown as (req: IncomingMessage, res: ServerResponse) => void
  }

  /**
   * The principal behind an OAuth access token, or why there is none: unknown
   * or expired, issued for another resource, its grant revoked, or an agent or
   * operator the config no longer has.
   */
  async check(token: string): Promise<TokenCheck> {
    if (token.length === 0 || token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) return { ok: false, why: 'not a token writ issued' }
    const at = await this.provider.AccessToken.find(token)
    if (!at) return { ok: false, why: 'the token is unknown or expired' }
    const audience = [at.aud].flat()
    if (audience.length !== 1 || audience[0] !== this.resource) return { ok: false, why: `the token is not for ${this.resource}` }
    if (!at.grantId || !await this.provider.Grant.find(at.grantId)) return { ok: false, why: 'the connection was revoked' }
    const who = parseAccount(at.accountId)
    const agent = who && this.principals.get(who.agent)
    const operator = who && this.principals.get(who.operator)
    if (!agent || agent.kind !== 'agent' || !operator || operator.kind !== 'operator') {
      return { ok: false, why: 'the agent or the person the token was given for is not configured any more' }
    }
    // Checked on every call: taking someone off the agent's oauth rule ends their connections at once.
    if (!this.eligibleAgents(operator).some((a) => a.id === agent.id)) return { ok: false, why: `${operator.id} may not connect clients as ${agent.id} any more` }
    return { ok: true, principal: { ...agent, person: operator.person } }
  }

  /**
   * The agents `operator` may connect a client as, by the config alone (their
   * configured groups, not groups a single sign-on session brought): what the
   * consent page offers is what every later call is checked against.
   */
  eligibleAgents(operator: Principal): Principal[] {
    const configured = this.principals.get(operator.id)
    return configured && configured.kind === 'operator' ? this.principals.oauthAgentsFor(configured) : []
  }

  /** The interaction under way in this browser (its cookie), or undefined when there is none or it ended. */
  async interaction(req: IncomingMessage, res: ServerResponse, uid: string) {
    try {
      const details = await this.provider.interactionDetails(req, res)
      return details.uid === uid ? details : undefined
    } catch {
      return undefined
    }
  }

  /** The client's name and id as the consent page shows them. */
  async client(clientId: string): Promise<{ id: string, name: string } | undefined> {
    const c = await this.provider.Client.find(clientId).catch(() => undefined)
    return c ? { id: c.clientId, name: typeof c.clientName === 'string' ? c.clientName : c.clientId } : undefined
  }

  /** Records the consent: a grant of the `mcp` scope on `/mcp` to `agent` for `operator`; returns where the browser goes on. */
  async consent(req: IncomingMessage, res: ServerResponse, clientId: string, agent: Principal, operator: Principal): Promise<{ returnTo: string, grantId: string }> {
    const grant = new this.provider.Grant({ accountId: accountOf(agent.id, operator.id), clientId })
    // The scope is both one the provider lists (discovery) and the resource's: the grant holds it as both.
    grant.addOIDCScope(MCP_SCOPE)
    grant.addResourceScope(this.resource, MCP_SCOPE)
    const grantId = await grant.save()
    const returnTo = await this.provider.interactionResult(req, res, { login: { accountId: accountOf(agent.id, operator.id), remember: false }, consent: { grantId } })
    return { returnTo, grantId }
  }

  /** The person declined: the client gets `access_denied`. */
  async decline(req: IncomingMessage, res: ServerResponse): Promise<string> {
    return this.provider.interactionResult(req, res, { error: 'access_denied', error_description: 'the person declined' })
  }

  /** The connections `operator` gave (their grants still in force). */
  async connections(operator: Principal): Promise<Connection[]> {
    const out: Connection[] = []
    for (const { id, payload } of await this.store.grants()) {
      const who = parseAccount(String(payload.accountId ?? ''))
      if (!who || who.operator !== operator.id) continue
      const clientId = String(payload.clientId ?? '')
      const client = await this.client(clientId)
      const iat = typeof payload.iat === 'number' ? payload.iat * 1000 : Date.now()
      out.push({
        grantId: id, clientId, clientName: client?.name ?? clientId, agent: who.agent, operator: who.operator,
        grantedAt: new Date(iat).toISOString(), expiresAt: typeof payload.exp === 'number' ? new Date(payload.exp * 1000).toISOString() : undefined,
      })
    }
    return out.sort((a, b) => b.grantedAt.localeCompare(a.grantedAt))
  }

  /** Revokes one of `operator`'s connections with every token under it; false when it is not theirs (or gone). */
  async revoke(operator: Principal, grantId: string): Promise<Connection | undefined> {
    const mine = (await this.connections(operator)).find((c) => c.grantId === grantId)
    if (!mine) return undefined
    await this.store.revokeGrant(grantId)
    return mine
  }
}

/** The grant's account: the agent principal the client acts as, and the operator who consented. */
function accountOf(agent: string, operator: string): string { return `${agent}:${operator}` }

function parseAccount(account: string): { agent: string, operator: string } | undefined {
  const m = /^([A-Za-z0-9_.@-]{1,128}):([A-Za-z0-9_.@-]{1,128})$/.exec(account)
  return m ? { agent: m[1] as string, operator: m[2] as string } : undefined
}

function providerConfiguration(o: OAuthConfig, resource: string, store: OAuthStore, cookieKey: Buffer, grantTtlMs: number, errors: typeof OidcErrors): Configuration {
  const accessTtlS = Math.round(durationMs(o.access_token_ttl) / 1000)
  const grantTtlS = Math.round(grantTtlMs / 1000)
  const allowedHosts = new Set(o.client_metadata_documents.allowed_hosts)
  // ID tokens are never issued (no openid scope); oidc-provider still wants a signing key.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const features: Record<string, unknown> = {
    devInteractions: { enabled: false },
    userinfo: { enabled: false },
    // A client revokes only its own tokens (RFC 7009 §2.1); a person revokes a whole connection in the portal.
    revocation: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
    registration: { enabled: o.dynamic_registration },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx: KoaContextWithOIDC, indicator: string) => {
        if (indicator !== resource) throw new errors.InvalidTarget(`writ issues tokens for ${resource} only`)
        return { scope: MCP_SCOPE, audience: resource, accessTokenTTL: accessTtlS, accessTokenFormat: 'opaque' }
      },
    },
    clientIdMetadataDocument: {
      enabled: allowedHosts.size > 0,
      ack: 'draft-02',
      allowFetch: (_ctx: unknown, clientId: string) => allowedHosts.has(new URL(clientId).hostname),
      cacheDuration: { min: 30, max: 3600 },
    },
  }
  return {
    adapter: store.adapter(),
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'writ-oauth', use: 'sig', alg: 'ES256' }] as never },
    cookies: { keys: [createHmac('sha256', cookieKey).update('writ oauth cookies').digest('base64url')] },
    scopes: [MCP_SCOPE],
    claims: {},
    responseTypes: ['code'],
    clientDefaults: { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'ES256' },
    pkce: { required: () => true },
    features: features as Configuration['features'],
    fetchResponseBodyLimits: { 'client_id metadata document': o.client_metadata_documents.max_bytes } as never,
    ttl: {
      AccessToken: accessTtlS,
      AuthorizationCode: 60,
      Interaction: INTERACTION_S,
      Session: INTERACTION_S,
      RefreshToken: grantTtlS,
      // A grant ends grant_ttl after the consent, however often it is saved again.
      Grant: (_ctx: unknown, grant: { iat?: number }) => Math.max(1, (grant.iat ?? Math.floor(Date.now() / 1000)) + grantTtlS - Math.floor(Date.now() / 1000)),
    } as Configuration['ttl'],
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Every authorization goes through the consent page: a person picks the agent each time.
    loadExistingGrant: async (ctx) => {
      const id = ctx.oidc.result?.consent?.grantId
      return typeof id === 'string' ? ctx.oidc.provider.Grant.find(id) : undefined
    },
    interactions: { url: (_ctx, interaction) => `/ui/oauth/consent/${interaction.uid}` },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    // An error a browser lands on (a bad client id, a metadata document refused): plain text, nothing to escape or execute.
    renderError: async (ctx, out) => {
      ctx.type = 'text/plain; charset=utf-8'
      ctx.body = `writ could not start this authorization: ${String(out.error)}${out.error_description ? ` (${String(out.error_description)})` : ''}\n`
    },
  }
}
