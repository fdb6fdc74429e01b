/**
 * RabbitMQ for `rabbitmq` cases: Debian's rabbitmq-server with the management
 * plugin, every file (mnesia, logs, config, cookie) in the instance's folder
 * and nothing read from /etc/rabbitmq or /var/lib/rabbitmq, run as an
 * unprivileged user inside the run's network namespace (so epmd and the
 * default ports are its own). The node name and Erlang cookie are the case
 * file's (RABBITMQ_NODENAME, RABBITMQ_ERLANG_COOKIE), so the pack's
 * rabbitmqctl reaches it as it would on a host. Seeded at boot from a
 * definitions file (the `guest` administrator, the `/` vhost and the
 * `packtest` queue the cases list and purge), so a reset is a boot on an
 * empty mnesia folder.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { portAnswers } from '../private-nats.js'
import { Daemon, runSetup } from './daemon.js'
import type { RunningService, ServiceContext } from './service-types.js'

const LIB = '/usr/lib/rabbitmq'
const AMQP_PORT = 5672
const MANAGEMENT_PORT = 15672

/** The server script itself: Debian's /usr/sbin wrapper switches to the rabbitmq user and logs to /var/log/rabbitmq. */
function serverScript(): string {
  return existsSync(join(LIB, 'bin', 'rabbitmq-server')) ? join(LIB, 'bin', 'rabbitmq-server') : 'rabbitmq-server'
}

function installedVersion(): string {
  const dirs = existsSync(join(LIB, 'lib')) ? readdirSync(join(LIB, 'lib')).filter((d) => d.startsWith('rabbitmq_server-')) : []
  return dirs[0]?.slice('rabbitmq_server-'.length) ?? 'unknown'
}

/** RabbitMQ's stored form of a password (rabbit_password_hashing_sha256): base64(salt ‖ SHA-256(salt ‖ password)). */
function passwordHash(password: string): string {
  const salt = randomBytes(4)
  return Buffer.concat([salt, createHash('sha256').update(Buffer.concat([salt, Buffer.from(password)])).digest()]).toString('base64')
}

/** What a fresh broker is booted with: a node that imports definitions at boot creates no default user or vhost itself. */
function definitions(): unknown {
  return {
    users: [{ name: 'guest', password_hash: passwordHash('guest'), hashing_algorithm: 'rabbit_password_hashing_sha256', tags: ['administrator'], limits: {} }],
    vhosts: [{ name: '/' }],
    permissions: [{ user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' }],
    queues: [{ name: 'packtest', vhost: '/', durable: true, auto_delete: false, arguments: {} }],
  }
}

export async function startRabbitmq(ctx: ServiceContext): Promise<RunningService> {
  const dir = join(ctx.dir, 'rabbitmq')
  const home = join(dir, 'home')
  const mnesia = join(dir, 'mnesia')
  for (const d of [dir, home, join(dir, 'log')]) { mkdirSync(d, { recursive: true }); chownSync(d, ctx.user.uid, ctx.user.gid) }
  const cookie = ctx.env.RABBITMQ_ERLANG_COOKIE ?? randomBytes(16).toString('hex')
  const cookieFile = join(home, '.erlang.cookie')
  writeFileSync(cookieFile, cookie, { mode: 0o400 })
  chownSync(cookieFile, ctx.user.uid, ctx.user.gid)
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_management].\n')
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '')
  writeFileSync(join(dir, 'definitions.json'), JSON.stringify(definitions()))
  writeFileSync(join(dir, 'rabbitmq.conf'), [
    `listeners.tcp.default = ${AMQP_PORT}`, `management.tcp.port = ${MANAGEMENT_PORT}`, 'loopback_users.guest = true',
    'definitions.import_backend = local_filesystem', `definitions.local.path = ${join(dir, 'definitions.json')}`,
  ].join('\n') + '\n')
  const nodeName = ctx.env.RABBITMQ_NODENAME ?? `rabbit@${ctx.name}`
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', HOME: home,
    RABBITMQ_NODENAME: nodeName, RABBITMQ_MNESIA_BASE: mnesia, RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'), RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'), RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
  }
  const start = (): Promise<Daemon> => Daemon.start(ctx.user.wrap([serverScript()]), {
    env, logFile: join(dir, 'server.log'), what: 'rabbitmq-server', timeoutMs: 120_000,
    // The management listener opens once the broker has booted; polling a port costs nothing, unlike an Erlang CLI per try.
    ready: async () => await portAnswers(AMQP_PORT) && await portAnswers(MANAGEMENT_PORT),
  })
  const setupEnv = { PATH: process.env.PATH }
  const emptyMnesia = (): void => {
    runSetup(['rm', '-rf', mnesia], setupEnv, 'resetting rabbitmq')
    mkdirSync(mnesia)
    chownSync(mnesia, ctx.user.uid, ctx.user.gid)
  }
  emptyMnesia()
  let daemon = await start()
  return {
    name: ctx.name,
    describe: `RabbitMQ ${installedVersion()} as ${nodeName} (AMQP ${AMQP_PORT}, management ${MANAGEMENT_PORT})`,
    reset: async () => {
      await daemon.stop()
      emptyMnesia()
      daemon = await start()
    },
    stop: () => daemon.stop(),
  }
}
