/**
 * The approver registry file as a daemon follows it: verified when opened (a
 * bad file is an ApproverRegistryError naming the file and the fault), then
 * watched — a Nomad template re-renders it when an administrator publishes a
 * new one. A replacement that does not verify, or was issued before the one
 * in force (an old registry could bring back a revoked passkey), is refused
 * and the registry in force stays. Runners and the control plane use this one
 * class.
 */
import { existsSync, readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs'
import { ApproverRegistryError, verifyApproverRegistry, type ApproverRegistry, type RegistryKeys } from './approver-registry.js'

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
}

export class ApproverRegistryFile {
  private registry: ApproverRegistry | undefined
  private listener: ((cur: Stats, prev: Stats) => void) | undefined

  private constructor(readonly file: string, private readonly keys: RegistryKeys, private readonly log: RegistryLog) {}

  static open(file: string, keys: RegistryKeys, log: RegistryLog, opts: RegistryFileOptions): ApproverRegistryFile {
    const f = new ApproverRegistryFile(file, keys, log)
    if (opts.mustExist || existsSync(file)) {
      f.registry = f.read()
      f.announce('approver registry loaded')
    } else {
      log.warn({ file }, 'the approver registry is not published yet; passkey approvals start when it is (writ approvers export)')
    }
    f.listener = (cur, prev) => f.changed(cur, prev)
    watchFile(file, { interval: opts.reloadMs, persistent: false }, f.listener)
    return f
  }

  private read(): ApproverRegistry {
    let text: string
    try { text = readFileSync(this.file, 'utf8') } catch (err) {
      throw new ApproverRegistryError(`cannot read the approver registry ${this.file}: ${(err as Error).message}`, { cause: err })
    }
    if (text.trim() === '') throw new ApproverRegistryError(`the approver registry ${this.file} is empty: publish one with writ approvers export`)
    return verifyApproverRegistry(text, this.keys, `approver registry ${this.file}`)
  }

  private announce(message: string): void {
    const r = this.registry
    if (r) this.log.info({ file: this.file, issuedAt: r.issued_at, approvers: r.approvers.length, minRisk: r.require.min_risk ?? 'default', rpId: r.relying_party.id }, message)
  }

  private changed(cur: Stats, prev: Stats): void {
    if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return
    const inForce = this.registry ? `, the one issued ${this.registry.issued_at} stays in force` : ''
    // A rename-into-place shows the file missing for an instant; the next stat sees the new one.
    if (cur.nlink === 0) return
    let next: ApproverRegistry
    try { next = this.read() } catch (err) {
      this.log.error({ file: this.file }, `approver registry replacement refused${inForce}: ${(err as Error).message}`)
      return
    }
    if (this.registry && Date.parse(next.issued_at) < Date.parse(this.registry.issued_at)) {
      this.log.error({ file: this.file, issuedAt: next.issued_at }, `approver registry replacement refused${inForce}: it was issued ${next.issued_at}, before the one in force; an old registry could bring back a revoked passkey`)
      return
    }
    this.registry = next
    this.announce('approver registry reloaded')
  }

  /** The registry in force; undefined only while none was ever published (`mustExist: false`). */
  get current(): ApproverRegistry | undefined { return this.registry }

  close(): void {
    // Only this follower's listener: another daemon in the process may follow the same file.
    if (this.listener) unwatchFile(this.file, this.listener)
    this.listener = undefined
  }
}
