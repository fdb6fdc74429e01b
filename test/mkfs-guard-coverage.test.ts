/**
 * Every format path the democratic-csi image can reach goes through the mkfs
 * guard. The list of formatters and partitioners is not written here: it is
 * derived from Debian's own packages (the ones the image installs), read with
 * `apt-get download` + `dpkg-deb -c`. Each one must resolve, on the job's
 * pinned PATH, to the guard mounted from local/writ/mkfs-guard.sh before the
 * real binary; and the guard, called by each of those names the way
 * democratic-csi calls it, refuses every one but mkfs.<allowed fs> without
 * running anything. No network to Debian's mirror means a failure, not a skip.
 */
import t from 'tap'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, existsSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, posix } from 'node:path'
import { debianPackageFiles, type DebEntry } from './helpers/debian-packages.js'
import { hcl, JOBS_DIR, onlyJob, groups, tasks, withDefaults, type Json } from './helpers/hcl-jobs.js'
import { runScript } from './helpers/loop-device.js'

/** The packages democratic-csi's Dockerfile installs that carry formatters or partitioners. */
const FORMAT_PACKAGES = ['e2fsprogs', 'util-linux', 'xfsprogs', 'btrfs-progs', 'dosfstools', 'exfatprogs', 'ntfs-3g', 'fdisk', 'gdisk']
/** Packages whose every program edits partition tables. */
const PARTITIONER_PACKAGES = new Set(['fdisk', 'gdisk'])
const IN_BIN_DIR = /^\/(?:usr\/)?s?bin\/[^/]+$/
const GUARD = join(JOBS_DIR, 'scripts', 'mkfs-guard.sh')

interface Derived { formatters: string[], partitioners: string[], image: Set<string> }

/**
 * Formatters: `mkfs` and `mkfs.*`; `mk…fs` / `mk…swap` (mke2fs, mkdosfs,
 * mkntfs, mkswap); whatever an mkfs.* link points at; whatever links to a
 * formatter. Partitioners: every program of fdisk and gdisk, and any *fdisk /
 * *gdisk elsewhere.
 */
function derive(listings: Map<string, DebEntry[]>): Derived {
  const formatters = new Set<string>()
  const partitioners = new Set<string>()
  const image = new Set<string>()
  const links: Array<[string, string]> = []
  for (const [pkg, entries] of listings) {
    for (const e of entries) {
      if (!IN_BIN_DIR.test(e.path)) continue
      const name = basename(e.path)
      // Debian 12 merges /usr: /sbin and /bin are links to usr/sbin and usr/bin.
      image.add(e.path.replace(/^\/(s?bin)\//, '/usr/$1/'))
      if (name === 'mkfs' || name.startsWith('mkfs.') || /^mk[a-z0-9]*(?:fs|swap)$/.test(name)) formatters.add(name)
      if (PARTITIONER_PACKAGES.has(pkg) || /[fg]disk$/.test(name)) partitioners.add(name)
      if (e.linkTarget) links.push([name, basename(e.linkTarget)])
    }
  }
  for (let changed = true; changed;) {
    changed = false
    for (const [name, target] of links) {
      if (name.startsWith('mkfs.') && !formatters.has(target)) { formatters.add(target); changed = true }
      if (formatters.has(target) && !formatters.has(name)) { formatters.add(name); changed = true }
    }
  }
  return { formatters: [...formatters].sort(), partitioners: [...partitioners].sort(), image }
}

let derived: Derived
let task: Json
let doc: Json
t.before(async () => {
  derived = derive(debianPackageFiles(FORMAT_PACKAGES))
  doc = await hcl(join(JOBS_DIR, 'democratic-csi-node.nomad.hcl'))
  task = tasks(groups(onlyJob(doc).job)[0]!.group)[0]!.task
})

t.test('the list comes from Debian and holds the paths democratic-csi is known to take', async (t) => {
  t.comment(`formatters (${derived.formatters.length}): ${derived.formatters.join(' ')}`)
  t.comment(`partitioners (${derived.partitioners.length}): ${derived.partitioners.join(' ')}`)
  for (const known of ['mkfs.ext4', 'mkfs.xfs', 'mkfs.btrfs', 'mkfs.vfat', 'mkfs.exfat', 'mkfs.ntfs', 'mkfs.ext3', 'mkfs.minix', 'mke2fs', 'mkfs']) {
    t.ok(derived.formatters.includes(known), `${known} is derived as a formatter`)
  }
  for (const known of ['sfdisk', 'fdisk', 'sgdisk']) t.ok(derived.partitioners.includes(known), `${known} is derived as a partitioner`)
  t.ok(derived.image.has('/usr/sbin/mkfs.ext4') && derived.image.has('/usr/sbin/sfdisk'), 'the real binaries live in /usr/sbin')
})

t.test('every formatter and partitioner resolves to the guard on the job\'s PATH, before the real binary', async (t) => {
  const env = task.env[0]
  const path = String(env.PATH).split(':')
  const mounts = new Map<string, string>()
  for (const m of task.config[0].mount as Json[]) mounts.set(String(m.target), String(m.source))
  for (const name of [...derived.formatters, ...derived.partitioners]) {
    let hit: { dir: string, what: 'guard' | 'real' | 'other mount' } | undefined
    for (const dir of path) {
      const p = posix.join(dir, name)
      const source = mounts.get(p)
      if (source !== undefined) { hit = { dir, what: source === 'local/writ/mkfs-guard.sh' ? 'guard' : 'other mount' }; break }
      if (derived.image.has(p.replace(/^\/(s?bin)\//, '/usr/$1/'))) { hit = { dir, what: 'real' }; break }
    }
    t.equal(hit?.what, 'guard', `${name} → ${hit ? `${hit.dir}/${name} (${hit.what})` : 'not found'}`)
  }
  t.equal(env.MKFS_GUARD_REAL_DIR, '/usr/sbin')
  const allowed = withDefaults(doc, '${var.allowed_filesystems}') as string[]
  t.same(allowed, ['ext4', 'xfs'], 'by default only ext4 and xfs may be created')
  t.equal(env.MKFS_GUARD_ALLOWED_FS, '${join(" ", var.allowed_filesystems)}')
  for (const fs of allowed) t.ok(derived.image.has(`/usr/sbin/mkfs.${fs}`), `the real mkfs.${fs} is where the guard execs it (/usr/sbin)`)
  const guardMounts = [...mounts].filter(([, s]) => s === 'local/writ/mkfs-guard.sh').map(([target]) => basename(target)).sort()
  t.same(guardMounts, [...derived.formatters, ...derived.partitioners].sort(), 'and the guard is mounted under no other name')
})

t.test('called by any name but mkfs.<allowed fs>, the guard refuses at once, names the tool, and runs nothing', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'writ-guard-names-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const bin = join(work, 'guard-bin')
  const real = join(work, 'real')
  const calls = join(work, 'calls.log')
  mkdirSync(bin)
  mkdirSync(real)
  const all = [...derived.formatters, ...derived.partitioners]
  for (const name of all) {
    symlinkSync(GUARD, join(bin, name))
    // A "real" binary that only records that it was reached.
    writeFileSync(join(real, name), `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> '${calls}'\n`)
    chmodSync(join(real, name), 0o755)
  }
  const allowList = join(work, 'mkfs-allow')
  const device = '/dev/writ-test-lun'
  writeFileSync(allowList, `${device}\n`)
  const env = { PATH: process.env.PATH, MKFS_GUARD_REAL_DIR: real, MKFS_GUARD_ALLOW_LIST: allowList, MKFS_GUARD_LIB: join(JOBS_DIR, 'scripts', 'lib', 'blank-proof.sh'), BLANK_PROOF_STATE_DIR: join(work, 'state') }
  for (const name of all) {
    // democratic-csi: mkfs.<fs> [options] <device> (vfat adds -I); sfdisk <device> with a script on stdin.
    const args = name === 'mkfs.vfat' ? ['-I', device] : [device]
    const res = await runScript(join(bin, name), args, env)
    if (name === 'mkfs.ext4' || name === 'mkfs.xfs') {
      t.notMatch(res.stderr, 'is not a format path', `${name}: allowed to go on to the proof`)
      t.not(res.code, 0, `${name}: still refused here, the device is not proven blank (${res.stderr.trim()})`)
      continue
    }
    t.equal(res.code, 32, `${name}: refused`)
    const why = derived.partitioners.includes(name)
      ? `${name} would write a partition table, which this plugin never does (only sfdisk's report forms are let through); nothing was run. A partitioned volume does not grow its partition here: grow it on the host`
      : `${name} is not a format path this plugin may use (only mkfs.<fs> for: ext4 xfs, after the blank-and-readable proof); nothing was run`
    t.equal(res.stderr, `mkfs-guard: REFUSE ${device}: ${why}\n`, `${name}: one REFUSE line`)
  }
  t.notOk(existsSync(calls), 'no real formatter or partitioner was reached')
  t.equal(readFileSync(allowList, 'utf8'), `${device}\n`, 'the allow-list entry is untouched')

  // Allowing another filesystem makes its mkfs.<fs> take the same proof, and only that one.
  const btrfs = await runScript(join(bin, 'mkfs.btrfs'), [device], { ...env, MKFS_GUARD_ALLOWED_FS: 'ext4 xfs btrfs' })
  t.notMatch(btrfs.stderr, 'is not a format path', 'mkfs.btrfs with btrfs allowed goes on to the proof')
  t.match(btrfs.stderr, `mkfs-guard: REFUSE ${device}: allow-listed, but not proven blank and readable: no such device`)
  const mke2fs = await runScript(join(bin, 'mke2fs'), ['-t', 'btrfs', device], { ...env, MKFS_GUARD_ALLOWED_FS: 'ext4 xfs btrfs' })
  t.match(mke2fs.stderr, 'mke2fs is not a format path', 'mke2fs stays refused whatever -t says')
  t.notOk(existsSync(calls))
})
