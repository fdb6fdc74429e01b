/**
 * The lab's kernel and base initramfs, built from Debian's packages and
 * cached under test/lab/.cache/images/<kernel release>-<key>/, where the key
 * is a hash of every package version (kernel included) and of this recipe.
 * A new Debian point release gives a new key and a fresh build; the same
 * versions reuse the cache. The base initramfs is an uncompressed cpio (the
 * kernel unpacks it without inflating, which matters under TCG); each boot
 * appends its own small cpio with /init, the scenario and writ's files.
 */
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, copyFileSync, lstatSync, openSync, symlinkSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { currentCloudKernel, downloadDebs, extractDeb, guestPackageSet, type DebianPackage } from './debian-packages.js'

const run = promisify(execFile)

export const LAB_CACHE = join(dirname(fileURLToPath(import.meta.url)), '.cache')

/** Bump when the recipe below changes in a way the package versions do not show. */
const RECIPE = 4

/**
 * Kernel modules the guest loads (guest/modules, read by /init too; their
 * dependencies come from modules.dep): two virtio-scsi paths per LUN,
 * device-mapper multipath with its path selectors, ext4/xfs, and virtio-net
 * for the user-mode network of the host-agent scenario.
 */
export const GUEST_MODULES: readonly string[] = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'guest', 'modules'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean)

export interface LabImage {
  dir: string
  kernel: string
  /** Uncompressed newc cpio of the unpacked packages and modules. */
  initramfs: string
  /** The static busybox from the image (the host uses it to write cpio archives). */
  busybox: string
  kernelRelease: string
  packages: DebianPackage[]
  /** Whether this call built the image (false: taken from the cache). */
  built: boolean
  buildMs: number
}

/** Finds `module` and what it depends on in the kernel's modules.dep; builtin modules need nothing. */
function moduleFiles(modDir: string, wanted: readonly string[]): string[] {
  const norm = (m: string): string => m.replace(/-/g, '_')
  const builtin = new Set(readFileSync(join(modDir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map((p) => norm(p.replace(/^.*\//, '').replace(/\.ko.*$/, ''))))
  const deps = new Map<string, { file: string, needs: string[] }>()
  for (const line of readFileSync(join(modDir, 'modules.dep'), 'utf8').split('\n')) {
    const [file, rest] = line.split(':')
    if (!file) continue
    deps.set(norm(file.replace(/^.*\//, '').replace(/\.ko.*$/, '')), { file, needs: (rest ?? '').trim().split(/\s+/).filter(Boolean) })
  }
  const files = new Set<string>()
  for (const m of wanted) {
    const entry = deps.get(norm(m))
    if (!entry) {
      if (builtin.has(norm(m))) continue
      throw new Error(`kernel module ${m} is neither built in nor in modules.dep of ${modDir}`)
    }
    files.add(entry.file)
    for (const f of entry.needs) files.add(f)
  }
  return [...files].sort()
}

/** Writes a newc cpio of `dir` to `out` with busybox (Debian's busybox-static, from the image itself). */
export async function writeCpio(busybox: string, dir: string, out: string): Promise<void> {
  const { stdout: list } = await run(busybox, ['find', '.'], { cwd: dir, maxBuffer: 256 * 1024 * 1024 })
  const fd = openSync(out, 'w')
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(busybox, ['cpio', '-o', '-H', 'newc'], { cwd: dir, stdio: ['pipe', fd, 'pipe'] })
      let stderr = ''
      child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
      child.once('error', reject)
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`busybox cpio of ${dir} exited ${code}: ${stderr.trim()}`))))
      child.stdin?.end(list)
    })
  } finally {
    closeSync(fd)
  }
}

/**
 * Debian systems are merged-/usr: /bin, /sbin and /lib are links into /usr,
 * so /usr/sbin/mkfs.ext4 exists (the democratic-csi job's guard calls the
 * real mkfs there). Packages still ship the old paths; merge them as
 * Debian's usrmerge does.
 */
function mergeUsr(stage: string): void {
  const moveInto = (src: string, dst: string): void => {
    mkdirSync(dst, { recursive: true })
    for (const name of readdirSync(src)) {
      const from = join(src, name)
      const to = join(dst, name)
      if (!existsSync(to) && !isLink(to)) renameSync(from, to)
      else if (statSync(from).isDirectory() && !isLink(from) && statSync(to).isDirectory()) moveInto(from, to)
      // A name shipped in both places: the /usr copy stays, as usrmerge keeps it.
    }
    rmSync(src, { recursive: true, force: true })
  }
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) {
    const top = join(stage, d)
    if (!existsSync(top) || isLink(top)) continue
    moveInto(top, join(stage, 'usr', d))
    symlinkSync(`usr/${d}`, top)
  }
}

function isLink(p: string): boolean {
  try { return lstatSync(p).isSymbolicLink() } catch { return false }
}

/** Builds the image, or returns the cached one for today's package versions. */
export async function labImage(log: (line: string) => void = () => {}): Promise<LabImage> {
  const started = Date.now()
  const kernel = await currentCloudKernel()
  const packages = await guestPackageSet()
  const all = [kernel.pkg, ...packages]
  const key = createHash('sha256').update(JSON.stringify({ RECIPE, modules: GUEST_MODULES, packages: all.map((p) => `${p.name}=${p.version}`) })).digest('hex').slice(0, 12)
  const dir = join(LAB_CACHE, 'images', `${kernel.release}-${key}`)
  const image = (built: boolean): LabImage => ({
    dir, kernel: join(dir, 'vmlinuz'), initramfs: join(dir, 'base.cpio'), busybox: join(dir, 'busybox'),
    kernelRelease: kernel.release, packages: all, built, buildMs: Date.now() - started,
  })
  if (existsSync(join(dir, 'manifest.json'))) return image(false)

  log(`lab image: building ${kernel.release} (${kernel.pkg.version}) with ${packages.length} packages into ${dir}`)
  const debs = await downloadDebs(all, join(LAB_CACHE, 'debs'))
  const work = `${dir}.build-${process.pid}`
  rmSync(work, { recursive: true, force: true })
  const stage = join(work, 'stage')
  const kpkg = join(work, 'kernel')
  mkdirSync(stage, { recursive: true })
  mkdirSync(kpkg)
  try {
    await extractDeb(debs.get(kernel.pkg.name) as string, kpkg)
    for (const p of packages) await extractDeb(debs.get(p.name) as string, stage)
    mergeUsr(stage)
    for (const junk of ['usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'usr/share/lintian', 'usr/include']) rmSync(join(stage, junk), { recursive: true, force: true })

    const modSrc = join(kpkg, 'lib', 'modules', kernel.release)
    // The package leaves modules.dep to depmod at install time.
    await run(join(stage, 'bin', 'busybox'), ['depmod', '-b', kpkg, kernel.release])
    const modDst = join(stage, 'lib', 'modules', kernel.release)
    const files = moduleFiles(modSrc, GUEST_MODULES)
    for (const f of files) {
      if (!f.endsWith('.ko')) throw new Error(`${f}: compressed modules are not supported by the guest's busybox modprobe`)
      mkdirSync(dirname(join(modDst, f)), { recursive: true })
      copyFileSync(join(modSrc, f), join(modDst, f))
    }
    for (const meta of ['modules.dep', 'modules.builtin', 'modules.order', 'modules.alias']) {
      if (existsSync(join(modSrc, meta))) copyFileSync(join(modSrc, meta), join(modDst, meta))
    }
    mkdirSync(join(work, 'out'))
    copyFileSync(join(kpkg, 'boot', `vmlinuz-${kernel.release}`), join(work, 'out', 'vmlinuz'))
    copyFileSync(join(stage, 'bin', 'busybox'), join(work, 'out', 'busybox'))
    await writeCpio(join(stage, 'bin', 'busybox'), stage, join(work, 'out', 'base.cpio'))
    writeFileSync(join(work, 'out', 'manifest.json'), `${JSON.stringify({ kernel: kernel.pkg, release: kernel.release, modules: files, packages }, null, 2)}\n`)
    mkdirSync(dirname(dir), { recursive: true })
    rmSync(dir, { recursive: true, force: true })
    renameSync(join(work, 'out'), dir)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  // Older images of other package versions are of no further use.
  for (const old of readdirSync(dirname(dir))) {
    const p = join(dirname(dir), old)
    if (p !== dir && statSync(p).isDirectory() && !old.includes('.build-')) rmSync(p, { recursive: true, force: true })
  }
  log(`lab image: built in ${((Date.now() - started) / 1000).toFixed(1)} s (${(statSync(join(dir, 'base.cpio')).size / 1048576).toFixed(1)} MiB initramfs)`)
  return image(true)
}
