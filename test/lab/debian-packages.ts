/**
 * What the lab takes from Debian, asked of apt on this machine: the cloud
 * kernel Debian serves today (never a fixed version), the tools the guest
 * runs, and the shared libraries they link (followed through the `lib*`
 * dependencies, so a new Debian point release needs no edit here).
 * Everything is fetched with `apt-get download` and unpacked with
 * `dpkg-deb -x`; nothing is installed on this machine.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The meta-package that always depends on the current cloud kernel image. */
export const CLOUD_KERNEL_META = 'linux-image-cloud-amd64'

/**
 * Tools the guest runs, by the Debian package that ships them. The runner's
 * release executable is Node: it needs glibc, libstdc++ and libgcc_s.
 */
export const GUEST_PACKAGES = [
  'busybox-static', // /init, sh, mount, modprobe, cpio
  'coreutils', // GNU dd (iflag=direct,skip_bytes,count_bytes), timeout, df, cmp
  'util-linux', // blkid, wipefs, blockdev, lsblk, dmesg
  'dmsetup',
  'multipath-tools', // multipath, multipathd
  'kpartx',
  'e2fsprogs', // mkfs.ext4
  'xfsprogs', // mkfs.xfs (format-new-volume.sh)
  'open-iscsi', // iscsiadm (storage.iscsi_sessions)
  'socat', // scenario 5: the Task API and Docker sockets, forwarded to the API doubles on the host
  'libstdc++6', // the runner's single executable
  'libgcc-s1',
] as const

/** Non-library dependencies never followed: the guest has no init system, no debconf, no udev daemon. */
const LIBRARY_NAME = /^lib/

/** A package version and the file name apt-get download saves it under. */
export interface DebianPackage { name: string, version: string, file: string }

/** apt is missing, knows nothing, or cannot fetch: the message says which and what to do. */
export class DebianPackagesError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'DebianPackagesError'
  }
}

async function apt(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' } })
    return stdout
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string }
    if (err.code === 'ENOENT') throw new DebianPackagesError(`${cmd} is not installed: the lab fetches its kernel and tools from Debian's packages with apt`, { cause: e })
    throw new DebianPackagesError(`${cmd} ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-3).join(' | ')}`, { cause: e })
  }
}

/** Candidate versions of these packages (`apt-cache show --no-all-versions`). */
async function candidates(names: string[]): Promise<Map<string, { version: string, file: string, depends: string[] }>> {
  const out = await apt('apt-cache', ['show', '--no-all-versions', ...names])
  const found = new Map<string, { version: string, file: string, depends: string[] }>()
  for (const stanza of out.split(/\n\s*\n/)) {
    const field = (f: string): string | undefined => new RegExp(`^${f}: (.*)$`, 'm').exec(stanza)?.[1]
    const name = field('Package')
    const version = field('Version')
    const arch = field('Architecture')
    if (!name || !version || !arch || found.has(name)) continue
    const depends = [field('Pre-Depends'), field('Depends')].filter((d): d is string => d !== undefined)
      .flatMap((d) => d.split(','))
      // An OR group: the first alternative is what apt would pick on a plain system.
      .map((alt) => (alt.split('|')[0] ?? '').trim().replace(/\s*\(.*\)$/, '').replace(/:any$/, ''))
      .filter(Boolean)
    // apt-get download's name for it: an epoch's ":" is written "%3a".
    found.set(name, { version, depends, file: `${name}_${version.replace(/:/g, '%3a')}_${arch}.deb` })
  }
  const missing = names.filter((n) => !found.has(n))
  if (missing.length > 0) throw new DebianPackagesError(`apt-cache knows no candidate for ${missing.join(', ')} (run "apt-get update" first)`)
  return found
}

/**
 * The kernel image package the cloud meta-package depends on today,
 * e.g. `linux-image-6.1.0-56-cloud-amd64`, and its release string.
 */
export async function currentCloudKernel(): Promise<{ pkg: DebianPackage, release: string }> {
  const meta = (await candidates([CLOUD_KERNEL_META])).get(CLOUD_KERNEL_META)
  const image = meta?.depends.find((d) => /^linux-image-\d.*-cloud-amd64$/.test(d))
  if (!meta || !image) throw new DebianPackagesError(`${CLOUD_KERNEL_META} ${meta?.version ?? '?'} names no linux-image-*-cloud-amd64 dependency (depends: ${meta?.depends.join(', ') ?? 'none'})`)
  const { version, file } = (await candidates([image])).get(image) as { version: string, file: string }
  return { pkg: { name: image, version, file }, release: image.replace(/^linux-image-/, '') }
}

/** The guest packages and, transitively, every `lib*` package they depend on; sorted by name. */
export async function guestPackageSet(roots: readonly string[] = GUEST_PACKAGES): Promise<DebianPackage[]> {
  const seen = new Map<string, DebianPackage>()
  let frontier = [...roots]
  while (frontier.length > 0) {
    const info = await candidates(frontier)
    const next = new Set<string>()
    for (const [name, { version, file, depends }] of info) {
      seen.set(name, { name, version, file })
      for (const d of depends) if (LIBRARY_NAME.test(d) && !seen.has(d)) next.add(d)
    }
    frontier = [...next].filter((n) => !seen.has(n))
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : 1))
}

/** Downloads what `debDir` does not hold yet; returns each package's .deb path. */
export async function downloadDebs(packages: DebianPackage[], debDir: string): Promise<Map<string, string>> {
  mkdirSync(debDir, { recursive: true })
  const missing = packages.filter((p) => !existsSync(join(debDir, p.file)))
  if (missing.length > 0) {
    // Into a scratch folder first: a download cut short never looks complete.
    const partial = join(debDir, `.partial-${process.pid}`)
    rmSync(partial, { recursive: true, force: true })
    mkdirSync(partial)
    try {
      await apt('apt-get', ['download', '-q', ...missing.map((p) => `${p.name}=${p.version}`)], partial)
      for (const f of readdirSync(partial)) renameSync(join(partial, f), join(debDir, f))
    } finally {
      rmSync(partial, { recursive: true, force: true })
    }
  }
  const paths = new Map<string, string>()
  for (const p of packages) {
    const file = join(debDir, p.file)
    if (!existsSync(file)) throw new DebianPackagesError(`apt-get download ${p.name}=${p.version} left no ${p.file} in ${debDir}`)
    paths.set(p.name, file)
  }
  return paths
}

/** `dpkg-deb -x` of one package into `dir`. */
export async function extractDeb(deb: string, dir: string): Promise<void> {
  await apt('dpkg-deb', ['-x', deb, dir])
}
