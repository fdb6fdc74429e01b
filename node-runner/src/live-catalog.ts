/**
 * The runner's catalog, kept honest against the disk: before each writ the
 * pack files are stat'ed, and if any changed the packs are loaded again, so
 * the digest compared with the writ is always the digest of what would run.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { PackCatalog } from '@writ/packs'

function fingerprint(dirs: readonly string[]): string {
  const parts: string[] = []
  const walk = (dir: string, depth: number): void => {
    let names: string[]
    try { names = readdirSync(dir).sort() } catch { parts.push(`${dir}:missing`); return }
    for (const name of names) {
      const full = join(dir, name)
      try {
        const st = statSync(full)
        if (st.isDirectory()) { if (depth < 4) walk(full, depth + 1) } else parts.push(`${full}:${st.size}:${st.mtimeMs}:${st.ino}`)
      } catch { parts.push(`${full}:gone`) }
    }
  }
  for (const d of dirs) walk(d, 0)
  return parts.join('|')
}

export class LiveCatalog {
  private catalog: PackCatalog
  private print: string
  /** Per loaded pack folder, its files' fingerprint when last loaded. */
  private packPrints = new Map<string, string>()

  constructor(private readonly dirs: readonly string[], private readonly onReload?: (c: PackCatalog) => void) {
    this.print = fingerprint(dirs)
    this.catalog = PackCatalog.fromDirs(dirs)
    this.rememberPacks()
  }

  private rememberPacks(): void {
    this.packPrints = new Map(this.catalog.packs.map((p) => [p.id, fingerprint([p.dir])]))
  }

  private reload(): void {
    this.print = fingerprint(this.dirs)
    this.catalog = PackCatalog.fromDirs(this.dirs)
    this.rememberPacks()
    this.onReload?.(this.catalog)
  }

  /**
   * The catalog as on disk now. With `packId` only that pack's files are
   * checked (the cheap per-writ path); an unknown pack, or none given,
   * checks every pack folder.
   */
  current(packId?: string): PackCatalog {
    const pack = packId !== undefined ? this.catalog.pack(packId) : undefined
    if (pack) {
      if (fingerprint([pack.dir]) !== this.packPrints.get(pack.id)) this.reload()
    } else if (fingerprint(this.dirs) !== this.print) this.reload()
    return this.catalog
  }

  /** The last catalog loaded, without touching the disk (heartbeats use this). */
  get cached(): PackCatalog { return this.catalog }
}
