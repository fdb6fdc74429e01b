/**
 * The loaded catalog both daemons query: action lookup, pack digests, and the
 * effective limits of a run (per-call options can only narrow what is declared).
 */
import type { LoadedAction, LoadedPack, LoadResult } from './pack-loader.js'
import { loadPacks } from './pack-loader.js'
import { parseDuration } from './duration.js'

export type CatalogLookup =
  | { ok: true, pack: LoadedPack, action: LoadedAction }
  | { ok: false, code: 'unknown_action' | 'digest_mismatch', message: string }

export interface EffectiveLimits { timeoutMs: number, maxStdoutBytes: number, maxStderrBytes: number }

export class PackCatalog {
  readonly packs: readonly LoadedPack[]
  readonly load: LoadResult
  private readonly actions = new Map<string, { pack: LoadedPack, action: LoadedAction }>()

  constructor(load: LoadResult) {
    this.load = load
    this.packs = load.packs
    for (const pack of load.packs) for (const action of pack.actions.values()) this.actions.set(action.id, { pack, action })
  }

  static fromDirs(dirs: readonly string[]): PackCatalog {
    return new PackCatalog(loadPacks(dirs))
  }

  get size(): number { return this.actions.size }

  allActions(): IterableIterator<{ pack: LoadedPack, action: LoadedAction }> { return this.actions.values() }

  pack(id: string): LoadedPack | undefined { return this.packs.find((p) => p.id === id) }

  /** Finds an action; with `digest`, also demands the pack's digest be identical. */
  lookup(actionId: string, digest?: string): CatalogLookup {
    const hit = this.actions.get(actionId)
    if (!hit) return { ok: false, code: 'unknown_action', message: `action "${actionId}" is not in the loaded packs` }
    if (digest !== undefined && hit.pack.digest !== digest) {
      return { ok: false, code: 'digest_mismatch', message: `pack "${hit.pack.id}" digest differs: writ has ${digest.slice(0, 12)}…, this host has ${hit.pack.digest.slice(0, 12)}…` }
    }
    return { ok: true, ...hit }
  }

  /** The declared limits, narrowed (never widened) by per-call options. */
  static limits(action: LoadedAction, options: { timeout_ms?: number | undefined, max_stdout_bytes?: number | undefined } = {}): EffectiveLimits {
    const spec = action.spec
    const declared = parseDuration(spec.execution.timeout) ?? 30_000
    const timeoutMs = options.timeout_ms !== undefined ? Math.min(declared, options.timeout_ms) : declared
    const maxOut = spec.output.max_stdout_bytes
    return {
      timeoutMs,
      maxStdoutBytes: options.max_stdout_bytes !== undefined ? Math.min(maxOut, options.max_stdout_bytes) : maxOut,
      maxStderrBytes: spec.output.max_stderr_bytes,
    }
  }
}
