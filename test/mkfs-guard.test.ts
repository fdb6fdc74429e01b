/**
 * The mkfs guard (jobs/scripts/mkfs-guard.sh) on real loop devices: what the
 * democratic-csi node plugin would see when it runs `mkfs.ext4 -m 0 <dev>`.
 * The guard is invoked through a symlink named mkfs.ext4 / mkfs.xfs, exactly
 * as it is bind-mounted in jobs/democratic-csi-node.nomad.hcl; the "real"
 * mkfs behind it records each call, so a refusal is also proven to have run
 * nothing.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually } from './helpers/cp-fake-runner.js'
import { createLoopDevice, fsTypeOf, hasTool, loopDeviceSkipReason, runScript, sha256Of, type LoopDevice } from './helpers/loop-device.js'
import { debianPackageRoot } from './helpers/debian-packages.js'

const here = dirname(fileURLToPath(import.meta.url))
const scripts = resolve(here, '../jobs/scripts')
const TIMEOUT_S = 3

const skip = loopDeviceSkipReason(['losetup', 'blkid', 'wipefs', 'blockdev', 'dd', 'cmp', 'mkfs.ext4'])
if (skip) {
  t.comment(`SKIPPED mkfs guard tests on loop devices: ${skip}`)
  t.skip(`mkfs guard on real loop devices — ${skip}`, () => {})
} else {
  const work = mkdtempSync(join(tmpdir(), 'writ-mkfs-guard-'))
  const devices: LoopDevice[] = []
  const stuckPids: number[] = []
  t.teardown(() => {
    for (const pid of stuckPids) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    for (const d of devices) d.detach()
    rmSync(work, { recursive: true, force: true })
  })

  // The guard under the names the plugin calls.
  const guardBin = join(work, 'guard-bin')
  mkdirSync(guardBin)
  for (const name of ['mkfs.ext4', 'mkfs.xfs']) symlinkSync(join(scripts, 'mkfs-guard.sh'), join(guardBin, name))

  // The "real" mkfs: records the call, then runs the system's mkfs.
  const realDir = join(work, 'real')
  const callLog = join(work, 'real-mkfs-calls.log')
  mkdirSync(realDir)
  for (const name of ['mkfs.ext4', 'mkfs.xfs']) {
    const sys = ['/usr/sbin', '/sbin'].map((d) => join(d, name)).find((p) => existsSync(p)) ?? name
    writeFileSync(join(realDir, name), `#!/bin/sh\nprintf '%s %s\\n' "${name}" "$*" >> '${callLog}'\nexec '${sys}' "$@"\n`)
    chmodSync(join(realDir, name), 0o755)
  }
  const allowList = join(work, 'mkfs-allow')
  const stateDir = join(work, 'state')

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    MKFS_GUARD_ALLOW_LIST: allowList,
    MKFS_GUARD_REAL_DIR: realDir,
    MKFS_GUARD_LIB: join(scripts, 'lib/blank-proof.sh'),
    BLANK_PROOF_TIMEOUT: String(TIMEOUT_S),
    BLANK_PROOF_STATE_DIR: stateDir,
    ...extra,
  })
  const realCalls = (): string => (existsSync(callLog) ? readFileSync(callLog, 'utf8') : '')
  const mkfsExt4 = (dev: string, extra?: NodeJS.ProcessEnv) => runScript(join(guardBin, 'mkfs.ext4'), ['-m', '0', dev], env(extra))
  const newDevice = (name: string, sizeMiB = 64): LoopDevice => {
    const d = createLoopDevice(work, name, sizeMiB)
    devices.push(d)
    return d
  }

  t.test('an ext4-signed device is refused even when allow-listed, and its data is intact', async (t) => {
    const dev = newDevice('signed')
    execFileSync('mkfs.ext4', ['-q', '-F', dev.path])
    writeFileSync(allowList, `${dev.path}\n`)
    const before = await sha256Of(dev.path)
    const callsBefore = realCalls()

    const res = await mkfsExt4(dev.path)
    const after = await sha256Of(dev.path)
    t.comment(`guard: ${res.stderr.trim()}`)
    t.comment(`sha256 before: ${before}`)
    t.comment(`sha256 after:  ${after}`)

    t.not(res.code, 0, 'the guard exits non-zero')
    t.match(res.stderr, new RegExp(`^mkfs-guard: REFUSE ${dev.path}: .*not all zeros`, 'm'), 'one REFUSE line names the device and why')
    t.equal(res.stderr.trim().split('\n').length, 1, 'exactly one log line')
    t.equal(after, before, 'device content unchanged (sha256 before = after)')
    t.equal(fsTypeOf(dev.path), 'ext4', 'still ext4')
    t.equal(realCalls(), callsBefore, 'the real mkfs never ran')
    t.match(readFileSync(allowList, 'utf8'), dev.path, 'a refused device keeps its allow-list entry')
  })

  t.test('an all-zero allow-listed device is formatted once; the second attempt is refused', async (t) => {
    const dev = newDevice('new-lun')
    writeFileSync(allowList, `# new LUNs, one a line\n${dev.path}\n/dev/some-other-device\n`)

    const first = await mkfsExt4(dev.path)
    t.comment(`guard (1st): ${first.stderr.split('\n').filter((l) => l.startsWith('mkfs-guard:')).join(' | ')}`)
    t.equal(first.code, 0, 'first attempt succeeds')
    t.match(first.stderr, new RegExp(`^mkfs-guard: FORMAT ${dev.path}: `, 'm'), 'FORMAT line names the device')
    t.equal(fsTypeOf(dev.path), 'ext4', 'the device now carries ext4')
    t.match(realCalls(), `mkfs.ext4 -m 0 ${dev.path}`, 'the real mkfs ran with the original arguments')
    const list = readFileSync(allowList, 'utf8')
    t.notMatch(list, new RegExp(`^${dev.path}$`, 'm'), 'the entry was consumed')
    t.match(list, '/dev/some-other-device', 'other entries are kept')

    const formatted = await sha256Of(dev.path)
    const second = await mkfsExt4(dev.path)
    t.comment(`guard (2nd): ${second.stderr.trim()}`)
    t.not(second.code, 0, 'second attempt refused')
    t.match(second.stderr, new RegExp(`^mkfs-guard: REFUSE ${dev.path}: not allow-listed`, 'm'))
    t.equal(await sha256Of(dev.path), formatted, 'the new filesystem is untouched by the second attempt')
  })

  t.test('a device node made without udev (libdevmapper\'s /dev/mapper/<map>) is known by its major:minor', async (t) => {
    // Not a link to the kernel's node: a block node of its own, with the same major:minor, as
    // libdevmapper creates under /dev/mapper when udev does not. Only sysfs can say what it is.
    const dev = newDevice('udevless', 64)
    const [major, minor] = execFileSync('stat', ['-L', '-c', '%t %T', dev.path], { encoding: 'utf8' }).trim().split(' ').map((h) => parseInt(h, 16))
    const nodes = join(work, 'mapper')
    mkdirSync(nodes, { recursive: true })
    const node = join(nodes, 'lun-udevless')
    execFileSync('mknod', [node, 'b', String(major), String(minor)])
    t.equal(execFileSync('readlink', ['-f', node], { encoding: 'utf8' }).trim(), node, 'the node is not a link: its name says nothing')
    writeFileSync(allowList, `${dev.path}\n`)

    const res = await mkfsExt4(node)
    t.comment(`guard: ${res.stderr.split('\n').filter((l) => l.startsWith('mkfs-guard:')).join(' | ')}`)
    t.equal(res.code, 0, 'allow-listed by its kernel name, it is found and formatted')
    t.match(res.stderr, new RegExp(`^mkfs-guard: FORMAT ${node}: allow-listed as ${dev.path} \\(entry removed\\)`, 'm'))
    t.equal(fsTypeOf(dev.path), 'ext4')
    t.notMatch(readFileSync(allowList, 'utf8'), dev.path, 'the entry was consumed')
  })

  t.test('a blank device that is not allow-listed is refused', async (t) => {
    const dev = newDevice('not-listed')
    writeFileSync(allowList, '/dev/something-else\n')
    const res = await mkfsExt4(dev.path)
    t.comment(`guard: ${res.stderr.trim()}`)
    t.not(res.code, 0)
    t.match(res.stderr, `mkfs-guard: REFUSE ${dev.path}: not allow-listed as new`)
    t.equal(fsTypeOf(dev.path), '', 'still blank')

    rmSync(allowList, { force: true })
    const noList = await mkfsExt4(dev.path)
    t.not(noList.code, 0, 'no allow-list file at all: refused (the default)')
    t.match(noList.stderr, 'does not exist')
  })

  t.test('data only at the end of an allow-listed device is found (last MiB read)', async (t) => {
    const dev = newDevice('tail-data', 32)
    // e.g. a GPT backup header or an md superblock lives at the end.
    execFileSync('dd', [`of=${dev.path}`, 'if=/dev/urandom', 'bs=4096', 'count=1', `seek=${(32 * 256) - 2}`, 'conv=notrunc', 'status=none', 'oflag=direct'])
    writeFileSync(allowList, `${dev.path}\n`)
    const before = await sha256Of(dev.path)
    const res = await mkfsExt4(dev.path)
    t.comment(`guard: ${res.stderr.trim()}`)
    t.not(res.code, 0)
    t.match(res.stderr, 'the last MiB is not all zeros')
    t.equal(await sha256Of(dev.path), before, 'unchanged')
  })

  t.test('a detached loop device (no medium) is refused', async (t) => {
    const dev = newDevice('detached')
    dev.detach()
    writeFileSync(allowList, `${dev.path}\n`)
    const res = await mkfsExt4(dev.path)
    t.comment(`guard: ${res.stderr.trim()}`)
    t.not(res.code, 0)
    t.match(res.stderr, new RegExp(`^mkfs-guard: REFUSE ${dev.path}: .*(size 0|read)`, 'm'))
    t.notMatch(realCalls(), `${dev.path}\n`, 'nothing ran on it')
  })

  t.test('a FIFO given as the device is refused (not a block device)', async (t) => {
    const fifo = join(work, 'not-a-disk.fifo')
    execFileSync('mkfifo', [fifo])
    writeFileSync(allowList, `${fifo}\n`)
    const res = await mkfsExt4(fifo)
    t.comment(`guard: ${res.stderr.trim()}`)
    t.not(res.code, 0)
    t.match(res.stderr, `REFUSE ${fifo}: allow-listed, but not proven blank and readable: not a block device`)
    t.ok(res.ms < 2000, `answered at once (${res.ms} ms)`)
  })

  t.test('a read that cannot complete in time: refused within the timeout, not formatted, no second reader', async (t) => {
    // The stand-in for a queueing multipath map: `dd` blocks opening a FIFO
    // nobody writes to, and ignores SIGTERM (a D-state reader ignores every
    // signal). The guard must answer from its deadline, not from the reader.
    const fakeBin = join(work, 'hang-bin')
    const fifo = join(work, 'never-written.fifo')
    mkdirSync(fakeBin)
    execFileSync('mkfifo', [fifo])
    writeFileSync(join(fakeBin, 'dd'), `#!/bin/sh\ntrap '' TERM INT HUP\nexec cat '${fifo}'\n`)
    chmodSync(join(fakeBin, 'dd'), 0o755)
    const dev = newDevice('hangs')
    writeFileSync(allowList, `${dev.path}\n`)
    const hangEnv = { PATH: `${fakeBin}:${process.env.PATH ?? ''}` }

    const res = await mkfsExt4(dev.path, hangEnv)
    t.comment(`guard: ${res.stderr.trim()} (answered after ${res.ms} ms)`)
    t.not(res.code, 0, 'refused')
    t.match(res.stderr, `did not complete within ${TIMEOUT_S}s`)
    t.ok(res.ms < (TIMEOUT_S + 3) * 1000, `answered within the timeout plus slack (${res.ms} ms), although the reader is still blocked`)
    t.equal(fsTypeOf(dev.path), '', 'not formatted')
    t.match(readFileSync(allowList, 'utf8'), dev.path, 'the allow-list entry is not consumed')

    const marker = readFileSync(join(stateDir, `${dev.path.replace(/\//g, '_')}.reader`), 'utf8').trim()
    const pid = Number(marker)
    stuckPids.push(pid)
    t.ok(pid > 0 && isAlive(pid), `the stuck reader (pid ${pid}) is still there, and recorded`)

    const again = await mkfsExt4(dev.path, hangEnv)
    t.comment(`guard (again): ${again.stderr.trim()}`)
    t.not(again.code, 0)
    t.match(again.stderr, `earlier read of this device (pid ${pid}) is still stuck`, 'no second reader is started')
    t.ok(again.ms < 2000, `answered at once (${again.ms} ms)`)

    // Once the reader is gone the device is probed normally again.
    process.kill(pid, 'SIGKILL')
    await waitGone(pid)
    const later = await mkfsExt4(dev.path)
    t.equal(later.code, 0, 'formatted after the stuck reader went away')
  })

  t.test('partition tables: sfdisk\'s report forms pass, every write is refused, and growpart says why in its output', async (t) => {
    // The image's own sfdisk and growpart (Debian's fdisk and cloud-guest-utils), unpacked, not installed.
    const realSbin = join(debianPackageRoot('fdisk'), 'sbin')
    const growpart = join(debianPackageRoot('cloud-guest-utils'), 'usr', 'bin', 'growpart')
    const bin = join(work, 'partition-bin')
    mkdirSync(bin)
    for (const name of ['sfdisk', 'sgdisk']) symlinkSync(join(scripts, 'mkfs-guard.sh'), join(bin, name))
    // democratic-csi's PATH: the guard first.
    const partEnv = env({ PATH: `${bin}:${process.env.PATH ?? ''}`, MKFS_GUARD_REAL_DIR: realSbin })
    const dev = newDevice('partitioned', 64)
    // One 32 MiB partition from 1 MiB: a volume whose LUN grew behind its partition.
    execFileSync(join(realSbin, 'sfdisk'), ['--no-reread', '--no-tell-kernel', '--quiet', dev.path], { input: 'label: dos\nstart=2048, size=65536, type=83\n' })
    const dump = (): string => execFileSync(join(realSbin, 'sfdisk'), ['--unit=S', '--dump', dev.path], { encoding: 'utf8' })
    const before = dump()

    const read = await runScript(join(bin, 'sfdisk'), ['--unit=S', '--dump', dev.path], partEnv)
    t.equal(read.code, 0, read.stderr)
    t.equal(read.stdout, before, 'sfdisk --dump through the guard prints the real table')
    t.equal(read.stderr, `mkfs-guard: READ ${dev.path}: sfdisk --unit=S --dump ${dev.path} changes nothing; running ${realSbin}/sfdisk\n`, 'one READ line')
    for (const args of [['--list', '--unit=S', dev.path], ['-l', dev.path], ['--version'], ['--show-size', dev.path], ['-d', '-u', 'S', dev.path]]) {
      const r = await runScript(join(bin, 'sfdisk'), args, partEnv)
      t.equal(r.code, 0, `sfdisk ${args.join(' ')} is a report: ${r.stderr.trim()}`)
    }

    // growpart as democratic-csi runs it: its dry run now gets the table it reads …
    const dry = await runScript(growpart, ['--dry-run', dev.path, '1'], partEnv)
    t.equal(dry.code, 0, `growpart --dry-run: ${dry.stderr}`)
    t.match(dry.stdout, /^CHANGE: partition=1 start=2048 old: size=65536 end=67583 new: size=\d+/m, 'growpart sees the room to grow')

    // … and the write is refused, in words growpart passes on to the plugin's log; the table is untouched.
    const grow = await runScript(growpart, [dev.path, '1'], partEnv)
    t.not(grow.code, 0, 'growpart fails (democratic-csi ignores that when it stages the volume)')
    t.match(grow.stdout + grow.stderr, `mkfs-guard: REFUSE ${dev.path}: sfdisk would write a partition table, which this plugin never does`, 'the REFUSE line is in growpart\'s output')
    t.equal(dump(), before, 'the partition table is unchanged')

    for (const args of [[dev.path], ['--no-reread', dev.path, '--force', '-O', join(work, 'backup')], ['-N', '1', dev.path], ['--delete', dev.path, '1'], ['--dump', '--force', dev.path], ['--dump', '--list', dev.path], ['--part-type', dev.path, '1', '83'], ['-u', 'C', '-d', dev.path]]) {
      const r = await runScript(join(bin, 'sfdisk'), args, partEnv)
      t.equal(r.code, 32, `sfdisk ${args.join(' ')}: refused`)
    }
    const sgdisk = await runScript(join(bin, 'sgdisk'), ['--print', dev.path], partEnv)
    t.match(sgdisk.stderr, 'sgdisk would write a partition table', 'sgdisk is refused whatever it is asked (growpart uses sfdisk on Debian 12)')
    t.equal(dump(), before, 'still unchanged')
  })

  t.test('mkfs.xfs goes through the guard too', { skip: hasTool('mkfs.xfs') ? false : 'mkfs.xfs not installed (xfsprogs)' }, async (t) => {
    const dev = newDevice('xfs-lun', 320)
    writeFileSync(allowList, `${dev.path}\n`)
    const res = await runScript(join(guardBin, 'mkfs.xfs'), [dev.path], env())
    t.equal(res.code, 0, res.stderr)
    t.match(res.stderr, `mkfs-guard: FORMAT ${dev.path}`)
    t.equal(fsTypeOf(dev.path), 'xfs')
    const again = await runScript(join(guardBin, 'mkfs.xfs'), [dev.path], env())
    t.not(again.code, 0)
  })
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function waitGone(pid: number): Promise<void> {
  await eventually(() => !isAlive(pid), 5000, `pid ${pid} to be gone`)
}

