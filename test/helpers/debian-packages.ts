/**
 * What Debian's own packages install, read from the packages themselves:
 * `apt-get download` fetches the .deb files into a git-ignored cache
 * (.cache/debian-packages/, reused while a file for the package is there) and
 * `dpkg-deb -c` lists them. Used to derive, not hand-maintain, the list of
 * formatters and partitioners the democratic-csi image carries, and
 * (`dpkg-deb -x`) to run the image's own programs — sfdisk, growpart —
 * without installing them on the machine.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../doubles/fixtures-dir.js'

export const DEB_CACHE = join(REPO_ROOT, '.cache', 'debian-packages')

export interface DebEntry { path: string, linkTarget?: string }

function need(tool: string): void {
  if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`${tool} is not installed: this test reads Debian's packages with apt-get download and dpkg-deb -c (CI runs on Debian with apt; install apt/dpkg or run it there)`)
  }
}

const debFor = (pkg: string): string | undefined => readdirSync(DEB_CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))

/** Downloads (once) and lists each package; throws, naming the package and apt's words, when it cannot. */
export function debianPackageFiles(packages: readonly string[]): Map<string, DebEntry[]> {
  need('apt-get')
  need('dpkg-deb')
  mkdirSync(DEB_CACHE, { recursive: true })
  const missing = packages.filter((p) => debFor(p) === undefined)
  if (missing.length > 0) {
    const r = spawnSync('apt-get', ['download', ...missing], { cwd: DEB_CACHE, encoding: 'utf8', timeout: 300_000 })
    if (r.status !== 0) {
      throw new Error(`apt-get download ${missing.join(' ')} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').filter((l) => /^E:|rror/.test(l)).join(' | ') || 'no output'} — are the package lists there (apt-get update)?`)
    }
  }
  const out = new Map<string, DebEntry[]>()
  for (const pkg of packages) {
    const deb = debFor(pkg)
    if (!deb) throw new Error(`apt-get download ${pkg} left no ${pkg}_*.deb in ${DEB_CACHE}`)
    const listing = execFileSync('dpkg-deb', ['-c', join(DEB_CACHE, deb)], { encoding: 'utf8' })
    const entries: DebEntry[] = []
    for (const line of listing.split('\n')) {
      // "-rwxr-xr-x root/root  123 2023-01-01 00:00 ./sbin/mkfs.xfs" or "lrwxrwxrwx … ./sbin/mkfs.ext4 -> mke2fs"
      const m = /^(\S+)\s+\S+\s+\d+\s+\S+\s+\S+\s+\.(\/.*?)(?: -> (.*))?$/.exec(line)
      if (!m || (m[1] as string).startsWith('d')) continue
      entries.push({ path: m[2] as string, ...(m[3] !== undefined ? { linkTarget: m[3] } : {}) })
    }
    if (entries.length === 0) throw new Error(`dpkg-deb -c ${deb} listed no files`)
    out.set(pkg, entries)
  }
  return out
}

/** Unpacks (once) a package into the cache and returns the folder: `<root>/usr/sbin/sfdisk` and the like, not installed anywhere. */
export function debianPackageRoot(pkg: string): string {
  debianPackageFiles([pkg])
  const deb = debFor(pkg) as string
  const root = join(DEB_CACHE, `${deb.slice(0, -'.deb'.length)}.root`)
  if (!existsSync(join(root, '.unpacked'))) {
    rmSync(root, { recursive: true, force: true })
    execFileSync('dpkg-deb', ['-x', join(DEB_CACHE, deb), root])
    writeFileSync(join(root, '.unpacked'), '')
  }
  return root
}
