/**
 * MariaDB for `mysql` and `mariadb` cases: Debian's mariadbd, installed into
 * the instance's folder and run as an unprivileged user, on 127.0.0.1:3306
 * inside the run's network namespace, with the account the case file
 * declares (MYSQL_USER or root, MYSQL_PWD or MYSQL_PASSWORD) and its
 * MYSQL_DATABASE. The seeded data folder is kept, so a reset is a copy of it.
 */
import { spawnSync } from 'node:child_process'
import { chownSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { portAnswers } from '../private-nats.js'
import { Daemon, ServiceStartError, runSetup } from './daemon.js'
import type { RunningService, ServiceContext } from './service-types.js'

const PORT = 3306

const literal = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
const ident = (s: string): string => `\`${s.replace(/`/g, '``')}\``

export async function startMariadb(ctx: ServiceContext): Promise<RunningService> {
  const user = ctx.env.MYSQL_USER ?? 'root'
  const password = ctx.env.MYSQL_PWD ?? ctx.env.MYSQL_PASSWORD ?? ''
  const database = ctx.env.MYSQL_DATABASE
  const dir = join(ctx.dir, 'mariadb')
  const data = join(dir, 'data')
  const pristine = join(dir, 'data.seeded')
  const socket = join(dir, 'mysqld.sock')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chownSync(dir, ctx.user.uid, ctx.user.gid)
  const env = { PATH: process.env.PATH, LANG: 'C.UTF-8' }
  runSetup(ctx.user.wrap(['mariadb-install-db', '--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db']), env, 'mariadb-install-db')
  const version = spawnSync('mariadbd', ['--version'], { encoding: 'utf8' }).stdout?.trim().replace(/\s+/g, ' ') ?? 'mariadbd'
  const start = (): Promise<Daemon> => Daemon.start(ctx.user.wrap([
    'mariadbd', '--no-defaults', `--datadir=${data}`, `--socket=${socket}`, `--pid-file=${join(dir, 'mysqld.pid')}`,
    '--bind-address=127.0.0.1', `--port=${PORT}`, '--skip-name-resolve', '--skip-log-bin',
  ]), { env, logFile: join(dir, 'mariadbd.log'), what: 'mariadbd', ready: () => portAnswers(PORT) })
  let daemon = await start()
  // Seeded over the server's own socket as root, which has no password yet.
  const sql = [
    ...(user === 'root'
      ? [`ALTER USER 'root'@'localhost' IDENTIFIED BY ${literal(password)}`, `CREATE USER 'root'@'%' IDENTIFIED BY ${literal(password)}`, `GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION`]
      : [`CREATE USER ${literal(user)}@'%' IDENTIFIED BY ${literal(password)}`, `GRANT ALL ON *.* TO ${literal(user)}@'%'`]),
    ...(database ? [`CREATE DATABASE IF NOT EXISTS ${ident(database)}`] : []),
  ].join('; ')
  try {
    runSetup(['mariadb', '--no-defaults', '-uroot', `--socket=${socket}`, '-e', sql], env, 'seeding mariadb')
  } catch (e) {
    await daemon.stop()
    throw e instanceof ServiceStartError ? e : new ServiceStartError(`seeding mariadb: ${(e as Error).message}`)
  }
  await daemon.stop()
  runSetup(['cp', '-a', data, pristine], env, 'keeping the seeded mariadb data')
  daemon = await start()
  return {
    name: ctx.name,
    describe: `${version} on 127.0.0.1:${PORT}, user ${user}${database ? `, database ${database}` : ''}`,
    reset: async () => {
      await daemon.stop()
      runSetup(['rm', '-rf', data], env, 'resetting mariadb')
      runSetup(['cp', '-a', pristine, data], env, 'resetting mariadb')
      daemon = await start()
    },
    stop: () => daemon.stop(),
  }
}
