/**
 * The services `packs test` knows, by the names case files use, and what it
 * does for each: start a private instance (inside the sandbox), use one the
 * caller runs (`--service NAME=ADDRESS`), run the actions on this host
 * itself, or skip the cases with the reason.
 */
import { startMariadb } from './mariadb-service.js'
import { startPostgres } from './postgres-service.js'
import { startRabbitmq } from './rabbitmq-service.js'
import { startRedis } from './redis-service.js'
import type { ServiceStarter } from './service-types.js'

export type { RunningService, ServiceContext, ServiceStarter } from './service-types.js'
export { ServiceStartError, type DaemonUser } from './daemon.js'

/** Services started from Debian's packages, private to the run. */
const STARTERS: Readonly<Record<string, ServiceStarter>> = {
  redis: startRedis,
  postgres: startPostgres,
  postgresql: startPostgres,
  mysql: startMariadb,
  mariadb: startMariadb,
  rabbitmq: startRabbitmq,
}

/**
 * Services that are the machine the action runs on, nothing to start:
 * emisar's `debug-target` is the host a debugging action inspects.
 */
const THIS_HOST = new Set(['debug-target'])

/** Why some services are never started, whatever the host. */
const NEVER: Readonly<Record<string, string>> = {
  systemd: 'the cases start, stop, enable and disable units (cron.service) of the service manager they reach; packs test never drives this host\'s own, and starts none',
}

/** An address given with `--service`: a unix socket (`unix:///path`) or `http(s)://host:port`. */
export interface ExternalService { name: string, address: string }

export type ServicePlan =
  | { kind: 'start', name: string, start: ServiceStarter }
  | { kind: 'external', name: string, address: string }
  | { kind: 'this-host', name: string }
  | { kind: 'unavailable', name: string, reason: string }

/** True when `packs test` would start this service itself (so the run needs the sandbox). */
export function startsLocally(name: string, external: ReadonlyMap<string, string>): boolean {
  return !external.has(name) && Object.hasOwn(STARTERS, name)
}

export function planService(name: string, external: ReadonlyMap<string, string>, sandbox: { inside: boolean, unavailable?: string | undefined }): ServicePlan {
  const given = external.get(name)
  if (given !== undefined) return { kind: 'external', name, address: given }
  if (THIS_HOST.has(name)) return { kind: 'this-host', name }
  const never = NEVER[name]
  if (never) return { kind: 'unavailable', name, reason: `service ${name}: ${never}` }
  const start = STARTERS[name]
  if (!start) return { kind: 'unavailable', name, reason: `service ${name}: packs test cannot start it; give a running one with --service ${name}=ADDRESS` }
  if (!sandbox.inside) return { kind: 'unavailable', name, reason: `service ${name}: ${sandbox.unavailable ?? 'no sandbox to start it in'}` }
  return { kind: 'start', name, start }
}

/**
 * The case file's environment with the external services' host names
 * replaced by their addresses: a value that is the name (`WRIT_DOCKER_SOCKET:
 * docker`) becomes the socket path or host, and a URL on that host
 * (`NOMAD_ADDR: http://nomad:4646`) becomes the given address.
 */
export function mapExternalAddresses(env: Readonly<Record<string, string>>, external: readonly ExternalService[]): Record<string, string> {
  const out: Record<string, string> = { ...env }
  for (const [k, v] of Object.entries(env)) {
    for (const svc of external) {
      const unix = svc.address.startsWith('unix://') ? svc.address.slice('unix://'.length) : undefined
      if (v === svc.name) { out[k] = unix ?? new URL(svc.address).hostname; break }
      const url = new RegExp(`^(https?)://${svc.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\d+)?(/.*)?$`).exec(v)
      if (url) { out[k] = unix !== undefined ? svc.address : `${svc.address.replace(/\/$/, '')}${url[3] ?? ''}`; break }
    }
  }
  return out
}

/** Parses `--service NAME=ADDRESS`; throws with what is wrong. */
export function parseExternalService(spec: string): ExternalService {
  const m = /^([a-z0-9][a-z0-9_.-]*)=(.+)$/i.exec(spec)
  if (!m) throw new Error(`--service "${spec}": expected NAME=unix:///path/to.sock or NAME=http://host:port`)
  const [, name, address] = m as unknown as [string, string, string]
  if (address.startsWith('unix:///')) return { name, address }
  try {
    const u = new URL(address)
    if (u.protocol === 'http:' || u.protocol === 'https:') return { name, address }
  } catch { /* fall through */ }
  throw new Error(`--service ${name}: "${address}" is not unix:///path or http(s)://host:port`)
}
