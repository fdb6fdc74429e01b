/**
 * Redis for `redis` cases: Debian's redis-server on 127.0.0.1:6379 inside
 * the run's network namespace (redis-cli takes no host or port from the
 * environment, so the pack's actions always reach the default), with the
 * password the case file gives in REDISCLI_AUTH and no persistence, so a
 * restart is a reset.
 */
import { spawnSync } from 'node:child_process'
import { chownSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { portAnswers } from '../private-nats.js'
import { Daemon } from './daemon.js'
import type { RunningService, ServiceContext } from './service-types.js'

const PORT = 6379

export async function startRedis(ctx: ServiceContext): Promise<RunningService> {
  const dir = join(ctx.dir, 'redis')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chownSync(dir, ctx.user.uid, ctx.user.gid)
  const conf = join(dir, 'redis.conf')
  // The password lives in a config file only the server reads, never on a command line others can see.
  writeFileSync(conf, [
    `bind 127.0.0.1`, `port ${PORT}`, `dir ${dir}`, 'save ""', 'appendonly no', 'daemonize no', 'protected-mode yes',
    ...(ctx.env.REDISCLI_AUTH ? [`requirepass "${ctx.env.REDISCLI_AUTH.replace(/["\\]/g, '\\$&')}"`] : []),
  ].join('\n') + '\n', { mode: 0o600 })
  chownSync(conf, ctx.user.uid, ctx.user.gid)
  const version = /v=(\S+)/.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown'
  const start = (): Promise<Daemon> => Daemon.start(ctx.user.wrap(['redis-server', conf]), {
    env: { PATH: process.env.PATH }, logFile: join(dir, 'redis.log'), what: 'redis-server', ready: () => portAnswers(PORT),
  })
  let daemon = await start()
  return {
    name: ctx.name,
    describe: `redis-server ${version} on 127.0.0.1:${PORT}`,
    reset: async () => { await daemon.stop(); daemon = await start() },
    stop: () => daemon.stop(),
  }
}
