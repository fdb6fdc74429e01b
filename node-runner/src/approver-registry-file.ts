/**
 * The approver registry as this runner holds it: loaded and verified at start
 * (a bad file stops the runner with the reason), then followed on disk — a
 * Nomad template re-renders it when an administrator publishes a new one.
 * A replacement that does not verify, or is older than the one in force, is
 * refused and the registry in force stays.
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs'
import type { Logger } from 'pino'
import { ApproverRegistryError, verifyApproverRegistry, type ApproverRegistry, type RegistryKeys } from '@writ/packs/protocol'

export class LiveApproverRegistry {
  private registry: ApproverRegistry
  private listener: ((cur: Stats, prev: Stats) => void) | undefined

  private constructor(private readonly file: string, private readonly keys: RegistryKeys, private readonly log: Logger, first: ApproverRegistry) {
    this.registry = first
  }

  /** Loads and verifies the file; throws ApproverRegistryError naming the file and what is wrong with it. */
  static open(file: string, keys: RegistryKeys, log: Logger, reloadIntervalMs: number): LiveApproverRegistry {
    const live = new LiveApproverRegistry(file, keys, log, LiveApproverRegistry.read(file, keys))
    live.announce('approver registry loaded')
    live.listener = (cur, prev) => live.changed(cur, prev)
    watchFile(file, { interval: reloadIntervalMs, persistent: false }, live.listener)
    return live
  }

  private static read(file: string, keys: RegistryKeys): ApproverRegistry {
    let text: string
    try { text = readFileSync(file, 'utf8') } catch (err) {
      throw new ApproverRegistryError(`cannot read the approver registry ${file}: ${(err as Error).message}`, { cause: err })
    }
    if (text.trim() === '') throw new ApproverRegistryError(`the approver registry ${file} is empty: publish one with writ approvers export`)
    return verifyApproverRegistry(text, keys, `approver registry ${file}`)
  }

  private announce(message: string): void {
    const r = this.registry
    this.log.info({ file: this.file, issuedAt: r.issued_at, approvers: r.approvers.length, minRisk: r.require.min_risk, rpId: r.relying_party.id }, message)
  }

  private changed(cur: Stats, prev: Stats): void {
    if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return
    let next: ApproverRegistry
    try { next = LiveApproverRegistry.read(this.file, this.keys) } catch (err) {
      this.log.error({ file: this.file }, `approver registry replacement refused, the one issued ${this.registry.issued_at} stays in force: ${(err as Error).message}`)
      return
    }
    if (Date.parse(next.issued_at) < Date.parse(this.registry.issued_at)) {
      this.log.error({ file: this.file, issuedAt: next.issued_at }, `approver registry replacement refused: it was issued ${next.issued_at}, before the one in force (${this.registry.issued_at}); an old registry could bring back a revoked passkey`)
      return
    }
    this.registry = next
    this.announce('approver registry reloaded')
  }

  get current(): ApproverRegistry { return this.registry }

  close(): void {
    // Only this registry's listener: another runner in the process may follow the same file.
    if (this.listener) unwatchFile(this.file, this.listener)
    this.listener = undefined
  }
}
