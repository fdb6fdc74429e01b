/**
 * PostgreSQL for `postgres` cases: Debian's server (initdb into the
 * instance's folder, as an unprivileged user — postgres refuses root), on
 * 127.0.0.1:5432 inside the run's network namespace, password auth
 * (scram-sha-256) for PGUSER/PGPASSWORD, the database PGDATABASE, and the
 * fixture the emisar cases are written against. The seeded data folder is
 * kept, so a reset is a copy of it.
 */
import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Daemon, ServiceStartError, runSetup } from './daemon.js'
import type { RunningService, ServiceContext } from './service-types.js'

const PORT = 5432

/**
 * What the cases look for in a fresh database: an `orders` table with an
 * index on `customer` (sizes, I/O, vacuum, duplicate and unused indexes,
 * EXPLAIN on `customer = 'alice'`) and pg_stat_statements installed.
 */
const FIXTURE_SQL = `
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE public.orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX idx_orders_customer ON public.orders (customer);
INSERT INTO public.orders (customer, total) SELECT (ARRAY['alice','bob','carol','dave'])[1 + g % 4], g * 1.5 FROM generate_series(1, 2000) AS g;
ANALYZE public.orders;
`

/** The newest PostgreSQL server Debian installed (/usr/lib/postgresql/<major>/bin), else whatever is on PATH. */
function serverBin(): string {
  const root = '/usr/lib/postgresql'
  const majors = existsSync(root) ? readdirSync(root).filter((d) => /^\d+$/.test(d) && existsSync(join(root, d, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : []
  return majors[0] ? join(root, majors[0], 'bin') : ''
}

function quoteIdent(s: string): string { return `"${s.replace(/"/g, '""')}"` }

export async function startPostgres(ctx: ServiceContext): Promise<RunningService> {
  const bin = serverBin()
  const exe = (name: string): string => (bin ? join(bin, name) : name)
  const user = ctx.env.PGUSER ?? 'postgres'
  const password = ctx.env.PGPASSWORD ?? ''
  const database = ctx.env.PGDATABASE ?? user
  const dir = join(ctx.dir, 'postgres')
  const data = join(dir, 'data')
  const pristine = join(dir, 'data.seeded')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chownSync(dir, ctx.user.uid, ctx.user.gid)
  const pwfile = join(dir, 'pw')
  writeFileSync(pwfile, `${password || 'packtest'}\n`, { mode: 0o600 })
  chownSync(pwfile, ctx.user.uid, ctx.user.gid)
  const env = { PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' }
  // Without a declared password the cases connect without one.
  const auth = password ? 'scram-sha-256' : 'trust'
  runSetup(ctx.user.wrap([exe('initdb'), '-D', data, '-U', user, `--auth-local=${auth}`, `--auth-host=${auth}`, `--pwfile=${pwfile}`, '-E', 'UTF8']), env, 'initdb')
  const version = spawnSync(exe('postgres'), ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? 'postgres'
  const start = (): Promise<Daemon> => Daemon.start(ctx.user.wrap([
    exe('postgres'), '-D', data, '-c', 'listen_addresses=127.0.0.1', '-c', `port=${PORT}`, '-c', `unix_socket_directories=${dir}`,
    '-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'fsync=off',
  ]), {
    env, logFile: join(dir, 'postgres.log'), what: 'postgres',
    ready: async () => spawnSync(exe('pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(PORT)]).status === 0,
  })
  let daemon = await start()
  const psql = (db: string, sql: string): void => {
    runSetup(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(PORT), '-U', user, '-d', db, '-c', sql],
      { ...env, PGPASSWORD: password || 'packtest' }, 'seeding postgres')
  }
  try {
    if (database !== 'postgres') psql('postgres', `CREATE DATABASE ${quoteIdent(database)}`)
    psql(database, FIXTURE_SQL)
  } catch (e) {
    await daemon.stop()
    throw e instanceof ServiceStartError ? e : new ServiceStartError(`seeding postgres: ${(e as Error).message}`)
  }
  // The seeded state, kept: a reset copies it back rather than seeding again.
  await daemon.stop()
  runSetup(['cp', '-a', data, pristine], env, 'keeping the seeded postgres data')
  daemon = await start()
  return {
    name: ctx.name,
    describe: `${version} on 127.0.0.1:${PORT}, database ${database}, user ${user}`,
    reset: async () => {
      await daemon.stop()
      runSetup(['rm', '-rf', data], env, 'resetting postgres')
      runSetup(['cp', '-a', pristine, data], env, 'resetting postgres')
      daemon = await start()
    },
    stop: () => daemon.stop(),
  }
}
