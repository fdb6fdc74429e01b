/**
 * A real OpenID provider on loopback (oidc-provider, a certified
 * implementation) for single sign-on tests: one confidential client, a few
 * users with email and groups claims, and its development login and consent
 * pages (any password is accepted; the login names the account).
 */
import { createServer, type Server } from 'node:http'
import { generateKeyPairSync } from 'node:crypto'
import Provider from 'oidc-provider'
import { freePort } from './nats-server.js'

/** A user at the provider; `emailVerified: 'absent'` makes a provider that never says whether it verified the email. Changes show in later sign-ins. */
export interface OidcUser { email: string, groups?: string[], emailVerified?: boolean | 'absent' }

export interface OidcProviderHandle {
  issuer: string
  close(): Promise<void>
}

export const OIDC_CLIENT = { client_id: 'writ-portal', client_secret: 'writ-portal-secret-0123456789abcdef' }

/**
 * Starts a provider. `issuerHost` lets a test make a provider whose
 * discovery document names another host than the one it is reached at.
 */
export async function startOidcProvider(opts: { redirectUris: string[], users: Record<string, OidcUser>, issuerHost?: string }): Promise<OidcProviderHandle> {
  const port = await freePort()
  const issuer = `http://${opts.issuerHost ?? '127.0.0.1'}:${port}`
  const signing = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })
  const provider = new Provider(issuer, {
    clients: [{ ...OIDC_CLIENT, redirect_uris: opts.redirectUris, grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
    jwks: { keys: [{ ...signing, use: 'sig', alg: 'RS256', kid: 'test-key' }] },
    findAccount: async (_ctx, sub) => {
      const u = opts.users[sub]
      if (!u) return undefined
      return {
        accountId: sub,
        claims: async () => ({ sub, email: u.email, ...(u.emailVerified === 'absent' ? {} : { email_verified: u.emailVerified ?? true }), groups: u.groups ?? [] }),
      }
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    cookies: { keys: ['oidc-test-cookie-key-0123456789'] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, IdToken: 600, AccessToken: 600 },
  })
  const server: Server = createServer(provider.callback())
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    issuer,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
}
