/**
 * The TLS part of the runner's and the watchdog's NATS connection options.
 */
import type { TlsOptions } from '@nats-io/transport-node'

/**
 * TLS only, verified against `caFile` (read again on every reconnect, so a
 * rotated file is picked up) and, when given, against `serverName` instead
 * of the address. nats.js hands its tls object to Node's tls.connect, where
 * `servername` names the certificate to expect: without it a server reached
 * by IP address (as Nomad's service discovery gives them) is checked against
 * "localhost", Node's fallback, and fails.
 */
export function natsTlsOptions(caFile: string | undefined, serverName: string | undefined): { tls?: TlsOptions } {
  if (caFile === undefined && serverName === undefined) return {}
  const tls = { ...(caFile !== undefined ? { caFile } : {}), ...(serverName !== undefined ? { servername: serverName } : {}) }
  return { tls }
}
