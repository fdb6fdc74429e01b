/**
 * Whether multipathd is there to answer. Its client (`multipathd show …`)
 * talks only to the daemon, over `/run/multipathd.socket` (multipath-tools
 * 0.12 and later) or the abstract socket `@/org/kernel/linux/storage/multipathd`
 * (every release; the only one in Debian 12's 0.9.4), which is reachable only
 * from the host's network namespace. The runner looks before it runs the
 * client, so a node without multipathd answers with that fact instead of a
 * client error, and nothing is started.
 */
import { connect } from 'node:net'

/** Where multipathd listens, in the order its own client tries them (libmpathcmd). `@` marks an abstract socket. */
export const MULTIPATHD_SOCKETS: readonly string[] = ['/run/multipathd.socket', '@/org/kernel/linux/storage/multipathd']

/** Binaries that are clients of multipathd: running one needs the daemon. */
export const MULTIPATHD_CLIENTS: ReadonlySet<string> = new Set(['multipathd'])

const CONNECT_TIMEOUT_MS = 2000

export type MultipathdProbe = { running: true, socket: string } | { running: false, message: string }

function tryConnect(name: string, timeoutMs: number): Promise<boolean> {
  // Node reaches the abstract namespace through a leading NUL.
  const path = name.startsWith('@') ? `\0${name.slice(1)}` : name
  return new Promise((resolve) => {
    const sock = connect({ path })
    const done = (ok: boolean): void => { clearTimeout(timer); sock.destroy(); resolve(ok) }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

/** Tries each socket in turn; the first that accepts a connection means multipathd is running. */
export async function probeMultipathd(sockets: readonly string[] = MULTIPATHD_SOCKETS, timeoutMs = CONNECT_TIMEOUT_MS): Promise<MultipathdProbe> {
  for (const s of sockets) {
    if (await tryConnect(s, timeoutMs)) return { running: true, socket: s }
  }
  return { running: false, message: `multipathd is not running on this node (nothing accepts connections on ${sockets.join(' or ')})` }
}
