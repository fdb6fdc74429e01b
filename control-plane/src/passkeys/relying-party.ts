/**
 * The WebAuthn relying party the portal is: its id (a host name; browsers
 * refuse an IP address) and the origins passkeys are used from.
 */
import { isIP } from 'node:net'
import { publicUrl, type Config } from '../config.js'

export interface RelyingParty { id: string, name: string, origins: string[] }

export class PasskeyConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'PasskeyConfigError' }
}

/**
 * The relying party from `passkeys.*`, defaulting to `public_url` (also when
 * passkeys are not configured yet: the first registry is exported from such a
 * control plane); throws naming the setting at fault.
 */
export function relyingParty(config: Config): RelyingParty {
  const pk = config.passkeys ?? { rp_name: 'writ', rp_id: undefined, origins: undefined }
  const base = new URL(publicUrl(config))
  const id = pk.rp_id ?? base.hostname
  if (isIP(id.replace(/^\[|\]$/g, '')) !== 0) {
    throw new PasskeyConfigError(`passkeys.rp_id: "${id}" is an IP address, and WebAuthn needs a host name; set public_url (or passkeys.rp_id) to the portal's name ("localhost" works on one machine)`)
  }
  const origins = pk.origins ?? [base.origin]
  for (const o of origins) {
    const host = new URL(o).hostname
    if (host !== id && !host.endsWith(`.${id}`)) throw new PasskeyConfigError(`passkeys.origins: ${o} is not on ${id} (passkeys.rp_id); a browser refuses a passkey for another site`)
  }
  return { id, name: pk.rp_name, origins }
}
