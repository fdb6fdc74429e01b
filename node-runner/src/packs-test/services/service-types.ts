/**
 * What every service `packs test` starts has in common: where it may keep
 * its files, the credentials the case file declares, who it runs as, and
 * the handle the run holds on it.
 */
import type { DaemonUser } from './daemon.js'

export interface ServiceContext {
  /** The host name the case file reaches it by (`PGHOST: postgres`); it resolves to 127.0.0.1 in the sandbox. */
  name: string
  /** A folder of its own, removed with the run. */
  dir: string
  /** The case file's environment: the credentials a service is seeded with (`REDISCLI_AUTH`, `PGPASSWORD`, …). */
  env: Readonly<Record<string, string>>
  user: DaemonUser
}

export interface RunningService {
  name: string
  /** What runs, for the pack's header line: "redis-server 7.0.15 on 127.0.0.1:6379". */
  describe: string
  /** Back to the state it started in (data and all), for the next case after one that changed it. */
  reset(): Promise<void>
  stop(): Promise<void>
}

export type ServiceStarter = (ctx: ServiceContext) => Promise<RunningService>
