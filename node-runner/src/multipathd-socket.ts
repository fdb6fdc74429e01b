/**
 * Whether multipathd is there to answer. Its client (`multipathd show …`)
 * talks only to the daemon, over `/run/multipathd.socket` (multipath-tools
 * 0.12 and later) or the abstract socket `@/org/kernel/linux/storage/multipathd`
 * (every release; the only one in Debian 12's 0.9.4), which is reachable only
 * from the host's network namespace. The runner looks before it runs the
 * client, so a node without multipathd answers with that fact instead of a
 * client error, and nothing is started.
 */
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'

/** Where multipathd listens, in the order its own client tries them (libmpathcmd). `@` marks an abstract socket. */
export const MULTIPATHD_SOCKETS: readonly string[] = ['/run/multipathd.socket', '@/org/kernel/linux/storage/multipathd']

/** Binaries that are clients of multipathd: running one needs the daemon. */
export const MULTIPATHD_CLIENTS: ReadonlySet<string> = new Set(['multipathd'])

const CONNECT_TIMEOUT_MS = 2000

export type MultipathdProbe = { running: true, socket: string } | { running: false, message: string }

function tryConnect(path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path })
    const done = (ok: boolean): void => { clearTimeout(timer); sock.destroy(); resolve(ok) }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

/** Flag of a listening socket in /proc/net/unix (__SO_ACCEPTCON). */
const SO_ACCEPTCON = 0x10000

/**
 * Whether an abstract unix socket of this name listens in our network
 * namespace. Node cannot connect to one: libuv passes the whole sun_path
 * (NUL-padded) as the address, so `connect('\0name')` reaches
 * "name\0\0…", never the exact-length name multipathd binds. The kernel's
 * table of unix sockets (per network namespace, like the abstract names
 * themselves) shows the listener; NUL bytes print as "@" there.
 */
async function abstractListening(name: string): Promise<boolean> {
  let table: string
  try { table = await readFile('/proc/net/unix', 'utf8') } catch { return false }
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    const path = f[7]
    if (path === undefined || (Number.parseInt(f[3] ?? '0', 16) & SO_ACCEPTCON) === 0) continue
    // A listener bound with padding (as Node binds) shows trailing "@"s.
    if (path === name || (path.startsWith(name) && /^@+$/.test(path.slice(name.length)))) return true
  }
  return false
}

/**
 * Tries each socket in turn; the first that accepts a connection (a path) or
 * listens (an abstract name) means multipathd is running.
 */
export async function probeMultipathd(sockets: readonly string[] = MULTIPATHD_SOCKETS, timeoutMs = CONNECT_TIMEOUT_MS): Promise<MultipathdProbe> {
  for (const s of sockets) {
    if (s.startsWith('@') ? await abstractListening(s) : await tryConnect(s, timeoutMs)) return { running: true, socket: s }
  }
  return { running: false, message: `multipathd is not running on this node (nothing accepts connections on ${sockets.join(' or ')})` }
}
