/**
 * The operator portal's settings: the session cookie and single sign-on
 * through an OpenID provider. Part of the config (config.ts).
 */
import { z } from 'zod'
import { Duration } from './config-policy.js'

export const PortalConfigSchema = z.object({
  /**
   * File holding the key of the encrypted session cookie: 32 bytes as 64 hex
   * characters (`writ keys generate` writes one). Every replica needs the same
   * key; without one, a key is made at start and sessions end with the process.
   */
  session_key_file: z.string().min(1).optional(),
  /** `Secure` on the session cookie; defaults to whether `public_url` is https. */
  secure_cookies: z.boolean().optional(),
  session_ttl: Duration.default('12h'),
  /** Operators may sign in with their bearer token (turn off once single sign-on is set up). */
  token_sign_in: z.boolean().default(true),
  /** Single sign-on through an OpenID provider (authorization code flow with PKCE). */
  oidc: z.object({
    /** The provider's issuer URL; its discovery document must name exactly this issuer. */
    issuer: z.string().url(),
    client_id: z.string().min(1),
    /** Prefer `client_secret_file` or `WRIT_OIDC_CLIENT_SECRET`; neither makes a public client (PKCE only). */
    client_secret: z.string().min(1).optional(),
    client_secret_file: z.string().min(1).optional(),
    /** Where the provider sends the operator back; default `<public_url>/ui/sign-in/oidc/callback`. */
    redirect_url: z.string().url().optional(),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).min(1).default(['openid', 'email', 'profile']),
    /** The claim whose value is matched against `principals[].sso`. */
    operator_claim: z.string().min(1).default('email'),
    /**
     * When set, an operator's groups come from this claim (a list of names)
     * instead of `principals[].groups` — only those also in `allowed_groups`.
     */
    groups_claim: z.string().min(1).optional(),
    /** The groups the provider may grant (required with `groups_claim`); any other group it names is ignored. */
    allowed_groups: z.array(z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'a group name: letters, digits and _ . @ -')).min(1).optional(),
    /** With `groups_claim`: groups older than this are read again from the provider (the operator goes back through it). */
    groups_max_age: Duration.default('15m'),
    /** How the sign-in button names the provider. */
    name: z.string().min(1).max(60).default('single sign-on'),
  }).strict().optional(),
}).strict().default({ session_ttl: '12h', token_sign_in: true })
