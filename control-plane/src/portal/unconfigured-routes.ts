/**
 * Portal pages of features this control plane runs without: a person who
 * follows a link to one gets a page that says the feature is off and how to
 * turn it on, not a bare "not found".
 */
import type { FastifyInstance } from 'fastify'
import { FeatureNotConfigured, withDetails } from '../http/index.js'

export const PASSKEYS_OFF = {
  message: 'passkeys are not configured on this control plane',
  hint: 'To turn them on, add a passkeys section to the control plane\'s config (passkeys: {} will do; see "Passkey-signed approvals" in control-plane/README.md) and restart it. '
    + 'WebAuthn needs a host name, so public_url must name the portal by name (https://writ.example.internal, or http://localhost on one machine), not by IP address as writ dev does.',
}
export const SSO_OFF = {
  message: 'single sign-on is not configured on this control plane',
  hint: 'To turn it on, add a portal.oidc section (issuer, client_id, client_secret_file; see "Single sign-on" in control-plane/README.md) and restart it. Until then, sign in with an operator token.',
}

export const OAUTH_OFF = {
  message: 'MCP authorization (OAuth) is not configured on this control plane',
  hint: 'To turn it on, add an oauth section and name who may connect as which agent under principals[].oauth (see "MCP authorization" in control-plane/README.md), and restart it. Until then, agents connect with a bearer token.',
}

export default async function unconfiguredRoutes(app: FastifyInstance, opts: { passkeys: boolean, sso: boolean, oauth: boolean }) {
  const off = (what: { message: string, hint: string }) => async () => { throw withDetails(new FeatureNotConfigured(what.message), { hint: what.hint }) }
  if (!opts.passkeys) for (const path of ['/passkeys', '/passkeys/*']) app.all(path, off(PASSKEYS_OFF))
  if (!opts.sso) for (const path of ['/sign-in/oidc', '/sign-in/oidc/*']) app.all(path, off(SSO_OFF))
  if (!opts.oauth) app.all('/oauth/*', off(OAUTH_OFF))
}
