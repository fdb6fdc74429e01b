/**
 * The approver registry file as a daemon follows it: verified when opened (a
 * bad file is an ApproverRegistryError naming the file and the fault), then
 * watched — a Nomad template re-renders it when an administrator publishes a
 * new one. A replacement that does not verify, has expired, or is older than
 * the newest one accepted (an old registry could bring back a revoked
 * passkey) is refused and the registry in force stays.
 *
 * "Accepted" outlives the process: the daemon hands in the newest registry
 * it accepted before (runners from their journal, the control plane from its
 * KV bucket) and is told of each newer one to keep. So a registry rolled back
 * on disk while the daemon was down is refused at start too, and the one
 * accepted before — verified again — stays in force. Runners and the control
 * plane use this one class.
 */
import { existsSync, readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs'
import { ApproverRegistryError, verifyApproverRegistry, type ApproverRegistry, type RegistryKeys } from './approver-registry.js'
import { describeMark, expiryReason, isNewer, markOf, rollbackReason, type AcceptedRegistry, type RegistryMark } from './registry-order.js'

/** The part of a pino logger this needs. */
export interface RegistryLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface RegistryFileOptions {
  /** How often the file is stat'ed for a change. */
  reloadMs: number
  /** Whether a missing file is an error at open (runners) or "not published yet" (the control plane). */
  mustExist: boolean
  /** The newest registry this daemon accepted before: nothing older is accepted, and it stays in force over an older file. */
  accepted?: AcceptedRegistry | undefined
  /** Told of every registry newer than any accepted before, to keep it across restarts; a failure is logged. */
  onAccepted?: ((accepted: AcceptedRegistry) => Promise<void>) | undefined
  now?: () => number
}

interface Verified { registry: ApproverRegistry, mark: RegistryMark, signed: Record<string, unknown> }

export class ApproverRegistryFile {
  private inForce: Verified | undefined
  /** The newest registry ever accepted (persisted); at least as new as the one in force. */
  private floor: RegistryMark | undefined
  private listener: ((cur: Stats, prev: Stats) => void) | undefined
  private persisting: Promise<void> = Promise.resolve()
  private readonly now: () => number

  private constructor(readonly file: string, private readonly keys: RegistryKeys, private readonly log: RegistryLog, private readonly opts: RegistryFileOptions) {
    this.now = opts.now ?? Date.now
  }

  static open(file: string, keys: RegistryKeys, log: RegistryLog, opts: RegistryFileOptions): ApproverRegistryFile {
    const f = new ApproverRegistryFile(file, keys, log, opts)
    f.start()
    f.listener = (cur, prev) => f.changed(cur, prev)
    watchFile(file, { interval: opts.reloadMs, persistent: false }, f.listener)
    return f
  }

  private start(): void {
    const before = this.opts.accepted
    if (before) this.floor = { serial: before.serial, issued_at: before.issued_at, digest: before.digest, ...(before.expires_at ? { expires_at: before.expires_at } : {}) }
    const held = before ? this.verifyHeld(before) : undefined
    if (!this.opts.mustExist && !existsSync(this.file)) {
      if (held) {
        this.inForce = held
        this.announce(`the approver registry ${this.file} is not published; ${describeMark(held.mark)}, accepted before, stays in force`)
      } else {
        this.log.warn({ file: this.file }, 'the approver registry is not published yet; passkey approvals start when it is (writ approvers export)')
      }
      return
    }
    const next = this.read()
    const problem = this.problem(next)
    if (problem === undefined) {
      this.install(next, 'approver registry loaded')
      return
    }
    if (!held) throw new ApproverRegistryError(`approver registry ${this.file} refused: ${problem}`)
    this.inForce = held
    this.log.error({ file: this.file, refused: next.mark, inForce: held.mark }, `approver registry ${this.file} refused at start: ${problem}; ${describeMark(held.mark)}, accepted before, stays in force`)
  }

  /** The registry accepted before, verified again with today's keys; undefined (logged) when it no longer verifies or has expired. */
  private verifyHeld(before: AcceptedRegistry): Verified | undefined {
    if (!before.signed) return undefined
    try {
      const v = this.verify(JSON.stringify(before.signed), `the approver registry accepted before (${describeMark(before)})`)
      const expired = expiryReason(v.registry, this.now())
      if (expired === undefined && v.mark.digest === before.digest) return v
      this.log.warn({ file: this.file, accepted: before }, `the approver registry accepted before is not kept in force: ${expired ?? 'its digest differs from the one recorded'}`)
    } catch (err) {
      this.log.warn({ file: this.file, accepted: before }, `the approver registry accepted before is not kept in force: ${(err as Error).message}`)
    }
    return undefined
  }

  private read(): Verified {
    let text: string
    try { text = readFileSync(this.file, 'utf8') } catch (err) {
      throw new ApproverRegistryError(`cannot read the approver registry ${this.file}: ${(err as Error).message}`, { cause: err })
    }
    if (text.trim() === '') throw new ApproverRegistryError(`the approver registry ${this.file} is empty: publish one with writ approvers export`)
    return this.verify(text, `approver registry ${this.file}`)
  }

  private verify(text: string, source: string): Verified {
    const registry = verifyApproverRegistry(text, this.keys, source)
    // Kept as written: the signature covers these bytes' meaning, not the parsed (defaulted) form.
    return { registry, mark: markOf(registry), signed: JSON.parse(text) as Record<string, unknown> }
  }

  /** Why `next` cannot be put in force now, or undefined. */
  private problem(next: Verified): string | undefined {
    return expiryReason(next.registry, this.now()) ?? (this.floor ? rollbackReason(next.mark, this.floor) : undefined)
  }

  private install(next: Verified, message: string): void {
    this.inForce = next
    this.announce(message)
    if (this.floor && !isNewer(next.mark, this.floor)) return
    this.floor = next.mark
    const onAccepted = this.opts.onAccepted
    if (!onAccepted) return
    const accepted: AcceptedRegistry = { ...next.mark, signed: next.signed }
    this.persisting = this.persisting.then(() => onAccepted(accepted)).catch((err: unknown) => {
      this.log.error({ file: this.file, mark: next.mark }, `could not record the approver registry as accepted (after a restart an older one could be taken): ${(err as Error).message}`)
    })
  }

  private announce(message: string): void {
    const r = this.inForce
    if (r) {
      this.log.info({
        file: this.file, serial: r.mark.serial, digest: r.mark.digest, issuedAt: r.registry.issued_at, expiresAt: r.registry.expires_at,
        approvers: r.registry.approvers.length, minRisk: r.registry.require.min_risk ?? 'default', rpId: r.registry.relying_party.id,
      }, message)
    }
  }

  private changed(cur: Stats, prev: Stats): void {
    if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return
    const inForce = this.inForce ? `, ${describeMark(this.inForce.mark)} stays in force` : ''
    // A rename-into-place shows the file missing for an instant; the next stat sees the new one.
    if (cur.nlink === 0) return
    let next: Verified
    try { next = this.read() } catch (err) {
      this.log.error({ file: this.file }, `approver registry replacement refused${inForce}: ${(err as Error).message}`)
      return
    }
    const problem = this.problem(next)
    if (problem !== undefined) {
      this.log.error({ file: this.file, refused: next.mark }, `approver registry replacement refused${inForce}: ${problem}`)
      return
    }
    this.install(next, 'approver registry reloaded')
  }

  /** The registry in force; undefined only while none was ever published (`mustExist: false`). */
  get current(): ApproverRegistry | undefined { return this.inForce?.registry }

  /** Serial, issue time and digest of the registry in force (what heartbeats report). */
  get mark(): RegistryMark | undefined { return this.inForce?.mark }

  /** Why the registry in force can no longer be used (it expired), or undefined. */
  expired(): string | undefined {
    return this.inForce ? expiryReason(this.inForce.registry, this.now()) : undefined
  }

  /** Resolves once every accepted registry handed to `onAccepted` so far has been recorded (or failed, logged). */
  recorded(): Promise<void> { return this.persisting }

  close(): void {
    // Only this follower's listener: another daemon in the process may follow the same file.
    if (this.listener) unwatchFile(this.file, this.listener)
    this.listener = undefined
  }
}
