/**
 * A budget of failed authentications per address, shared by `/v1`, `/mcp`
 * and the portal: a bad token, a bad sign-in link, a portal POST without a
 * session. An address past `max` failures in a minute is answered 429 for
 * the rest of that minute without its credentials being looked at (no work,
 * no log line per attempt).
 *
 * Agents behind one address (a NAT, a CI runner) must not be starved by a
 * neighbour's bad token more than necessary: a principal that authenticated
 * from the address before it was locked keeps working through the lock. A
 * principal new to a locked address waits like anybody else — otherwise a
 * locked-out guesser would still learn which of its guesses are valid.
 *
 * In memory, per replica: N replicas allow N budgets. Addresses are held in a
 * bounded map (IPv6 by /64, which one host usually owns entirely).
 */
import { isIPv6 } from 'node:net'
import type { Logger } from 'pino'

interface AddressState {
  failures: number
  windowEnds: number
  /** Principals that authenticated from here (at most KNOWN_PER_ADDRESS). */
  known: Set<string>
  locked: boolean
}

const WINDOW_MS = 60_000
const KNOWN_PER_ADDRESS = 64
const ADDRESSES = 10_000

export type Admission = { ok: true } | { ok: false, retryAfterSeconds: number }

export class FailedAuthLimiter {
  private readonly byAddress = new Map<string, AddressState>()

  /** `max` failed authentications per address per minute (`limits.failed_auth_per_minute`). */
  constructor(readonly max: number, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  /** Whether a request from `ip` may go on, given who its credentials name (undefined: nobody). */
  admit(ip: string, principal?: string): Admission {
    const s = this.byAddress.get(addressKey(ip))
    if (!s || !this.lockedNow(s)) return { ok: true }
    if (principal !== undefined && s.known.has(principal)) return { ok: true }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((s.windowEnds - this.now()) / 1000)) }
  }

  /** Counts a failed authentication from `ip`. */
  failed(ip: string): void {
    const key = addressKey(ip)
    const s = this.state(key)
    this.lockedNow(s)
    s.failures++
    if (s.failures >= this.max && !s.locked) {
      s.locked = true
      this.log.warn({ address: key, failures: s.failures }, 'too many failed authentications from one address: refusing its unauthenticated requests for the rest of the minute')
    }
  }

  /** Remembers that `principal` authenticated from `ip` (it keeps working if a neighbour gets the address locked). */
  succeeded(ip: string, principal: string): void {
    const s = this.state(addressKey(ip))
    if (s.known.has(principal) || s.known.size >= KNOWN_PER_ADDRESS) return
    // A principal first seen while the address is locked is not vouched for by that success.
    if (!this.lockedNow(s)) s.known.add(principal)
  }

  private state(key: string): AddressState {
    let s = this.byAddress.get(key)
    if (!s) {
      if (this.byAddress.size >= ADDRESSES) this.byAddress.delete(this.byAddress.keys().next().value as string)
      s = { failures: 0, windowEnds: this.now() + WINDOW_MS, known: new Set(), locked: false }
      this.byAddress.set(key, s)
    }
    return s
  }

  /** Starts a new window when the last one is over; whether the address is locked in the current one. */
  private lockedNow(s: AddressState): boolean {
    if (this.now() >= s.windowEnds) {
      s.failures = 0
      s.locked = false
      s.windowEnds = this.now() + WINDOW_MS
    }
    return s.locked
  }
}

/** The address a budget belongs to: an IPv4 address, or the /64 of an IPv6 one. */
export function addressKey(ip: string | undefined): string {
  // A request whose socket has no address (an injected WebSocket, a socket already gone) shares one budget.
  if (!ip) return 'unknown'
  if (ip.startsWith('::ffff:') && ip.includes('.')) return ip.slice('::ffff:'.length)
  if (!isIPv6(ip)) return ip
  const [head = '', tail] = ip.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`
}
