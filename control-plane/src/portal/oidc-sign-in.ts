/**
 * Single sign-on with an OpenID provider (openid-client): the authorization
 * code flow with PKCE, `state` and `nonce`. The provider is discovered on
 * first use (and again after a failure), so a provider that is down at boot
 * does not keep the control plane from starting. An operator is whoever the
 * config maps the configured claim to (`principals[].sso`) — an email only
 * when the provider verified it; nobody else. Groups from the provider count
 * only where `allowed_groups` names them.
 */
import { readFileSync } from 'node:fs'
import * as oidc from 'openid-client'
import type { Logger } from 'pino'
import type { Principal, PrincipalRegistry } from '../auth/index.js'
import type { Config } from '../config.js'
import { publicUrl } from '../config.js'
import { PortalConfigError } from './portal-session.js'

type OidcConfig = NonNullable<Config['portal']['oidc']>

/** What the session keeps while the operator is at the provider. */
export interface OidcTransaction { state: string, nonce: string, verifier: string, next: string, started: number }

export type OidcOutcome =
  | { ok: true, principal: Principal, groups: string[] | undefined, subject: string }
  /** unmapped: the provider vouched for someone the config does not know; refused: the response did not check out; unavailable: the provider cannot be reached. */
  | { ok: false, kind: 'unmapped' | 'refused' | 'unavailable', message: string }

/** How long a sign-in may stay at the provider. */
export const OIDC_TRANSACTION_MS = 10 * 60_000
const GROUP_NAME = /^[A-Za-z0-9_.@-]{1,128}$/
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost'])

export class OidcSignIn {
  private discovered: Promise<oidc.Configuration> | undefined
  readonly redirectUrl: string
  readonly name: string
  private readonly secret: string | undefined

  constructor(private readonly c: OidcConfig, base: string, private readonly principals: PrincipalRegistry, private readonly log: Logger) {
    const issuer = new URL(c.issuer)
    if (issuer.protocol !== 'https:' && !(issuer.protocol === 'http:' && LOOPBACK.has(issuer.hostname))) {
      throw new PortalConfigError(`portal.oidc.issuer must be an https URL (plain http only on loopback, for tests): ${c.issuer}`)
    }
    this.redirectUrl = c.redirect_url ?? `${base}/ui/sign-in/oidc/callback`
    this.name = c.name
    if (c.client_secret_file) {
      try { this.secret = readFileSync(c.client_secret_file, 'utf8').trim() } catch (err) {
        throw new PortalConfigError(`cannot read the OpenID client secret (setting portal.oidc.client_secret_file): ${c.client_secret_file}`, { cause: err })
      }
    } else this.secret = c.client_secret
  }

  static fromConfig(config: Config, principals: PrincipalRegistry, log: Logger): OidcSignIn | undefined {
    return config.portal.oidc ? new OidcSignIn(config.portal.oidc, publicUrl(config), principals, log) : undefined
  }

  private configuration(): Promise<oidc.Configuration> {
    this.discovered ??= (async () => {
      const issuer = new URL(this.c.issuer)
      return oidc.discovery(issuer, this.c.client_id, this.secret !== undefined ? { client_secret: this.secret } : undefined,
        this.secret !== undefined ? oidc.ClientSecretBasic(this.secret) : oidc.None(),
        { execute: issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [], timeout: 10 })
    })()
    // A failed discovery is tried again on the next sign-in.
    this.discovered.catch(() => { this.discovered = undefined })
    return this.discovered
  }

  /** Discovers the provider now, so a wrong issuer shows in the log at boot rather than at the first sign-in. */
  warmUp(): void {
    this.configuration().then(
      () => this.log.info({ issuer: this.c.issuer }, 'OpenID provider discovered'),
      (err: Error) => this.log.error({ issuer: this.c.issuer }, `OpenID provider discovery failed (setting portal.oidc.issuer); sign-in retries it: ${err.message}`),
    )
  }

  /** The provider's authorization URL for a new sign-in, and what the session must keep until it comes back. */
  async start(next: string): Promise<{ url: string, tx: OidcTransaction } | { ok: false, kind: 'unavailable', message: string }> {
    let config: oidc.Configuration
    try { config = await this.configuration() } catch (err) {
      return { ok: false, kind: 'unavailable', message: `${this.name} cannot be reached to sign you in: ${(err as Error).message}` }
    }
    const verifier = oidc.randomPKCECodeVerifier()
    const tx: OidcTransaction = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier, next, started: Date.now() }
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUrl, scope: this.c.scopes.join(' '), state: tx.state, nonce: tx.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    })
    return { url: url.href, tx }
  }

  /**
   * Completes a sign-in from the provider's redirect (`query` is the
   * callback's query string): state, issuer, code (with the PKCE verifier),
   * ID token and nonce are all checked by openid-client; then the claim is
   * mapped to an operator.
   */
  async finish(query: string, tx: OidcTransaction): Promise<OidcOutcome> {
    let config: oidc.Configuration
    try { config = await this.configuration() } catch (err) {
      return { ok: false, kind: 'unavailable', message: `${this.name} cannot be reached: ${(err as Error).message}` }
    }
    const current = new URL(this.redirectUrl)
    current.search = query
    let idClaims: Record<string, unknown>
    let userInfo: Record<string, unknown> | undefined
    try {
      const tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: tx.verifier, expectedState: tx.state, expectedNonce: tx.nonce, idTokenExpected: true })
      idClaims = { ...(tokens.claims() ?? {}) }
      if (this.needsUserInfo(idClaims) && tokens.access_token && typeof idClaims.sub === 'string') {
        // Some providers put email, its verification or groups only in userinfo.
        userInfo = { ...(await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub)) }
      }
    } catch (err) {
      return { ok: false, kind: 'refused', message: describeFailure(err) }
    }
    const identity = this.identity(idClaims, userInfo)
    if (!identity.ok) return identity
    const principal = this.principals.bySsoName(identity.value)
    if (!principal) {
      return { ok: false, kind: 'unmapped', message: `${this.name} signed you in as ${identity.value}, but no writ operator is configured for it. An administrator can add it as principals[].sso of an operator.` }
    }
    return { ok: true, principal, groups: this.groups(idClaims, userInfo), subject: identity.value }
  }

  private needsUserInfo(id: Record<string, unknown>): boolean {
    const claim = this.c.operator_claim
    return !(claim in id) || (claim === 'email' && !('email_verified' in id)) || (this.c.groups_claim !== undefined && !(this.c.groups_claim in id))
  }

  /**
   * The value matched against `principals[].sso`. An email counts only when
   * the provider says, in the same answer, that it verified it
   * (`email_verified: true`): anyone can type an address into a provider's
   * profile, and an absent claim is no promise.
   */
  private identity(id: Record<string, unknown>, userInfo: Record<string, unknown> | undefined): { ok: true, value: string } | Extract<OidcOutcome, { ok: false }> {
    const claim = this.c.operator_claim
    const source = claim in id && (claim !== 'email' || 'email_verified' in id) ? id : userInfo && claim in userInfo ? userInfo : id
    const value = source[claim]
    if (typeof value !== 'string' || value === '') {
      return { ok: false, kind: 'unmapped', message: `${this.name} did not say who you are in the claim "${claim}" (setting portal.oidc.operator_claim; check the scopes the provider grants)` }
    }
    if (claim === 'email' && source.email_verified !== true) {
      return { ok: false, kind: 'unmapped', message: `${this.name} has not verified the email ${value} (its answer has no email_verified: true), so it cannot name an operator` }
    }
    return { ok: true, value }
  }

  /** The provider's groups (groups_claim) that the config allows it to grant (allowed_groups); undefined without groups_claim. */
  private groups(id: Record<string, unknown>, userInfo: Record<string, unknown> | undefined): string[] | undefined {
    const claim = this.c.groups_claim
    if (claim === undefined) return undefined
    const raw = claim in id ? id[claim] : userInfo?.[claim]
    const allowed = new Set(this.c.allowed_groups ?? [])
    const named = (Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : []).filter((g): g is string => typeof g === 'string' && GROUP_NAME.test(g))
    return [...new Set(named.filter((g) => allowed.has(g)))]
  }
}

/** A sentence about why the provider's answer was not accepted (never a token). */
function describeFailure(err: unknown): string {
  if (err instanceof oidc.AuthorizationResponseError) return `the identity provider answered "${err.error}"${err.error_description ? `: ${err.error_description}` : ''}`
  if (err instanceof oidc.ResponseBodyError) return `the identity provider refused the sign-in code ("${err.error}"${err.error_description ? `: ${err.error_description}` : ''}); it may have been used already`
  // openid-client's message names the kind of failure; its cause says which check failed.
  const e = err as Error & { cause?: unknown }
  const why = e.cause instanceof Error && e.cause.message !== e.message ? `${e.message} (${e.cause.message})` : e.message
  return `the identity provider's answer does not check out: ${why}`
}
