/**
 * jobs/scripts/format-new-volume.sh on real loop devices: the operator's tool
 * for a new LUN proves it blank and readable, then runs mkfs.xfs without -f.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLoopDevice, fsTypeOf, loopDeviceSkipReason, runScript, sha256Of, type LoopDevice } from './helpers/loop-device.js'

const here = dirname(fileURLToPath(import.meta.url))
const script = resolve(here, '../jobs/scripts/format-new-volume.sh')

const skip = loopDeviceSkipReason(['losetup', 'blkid', 'wipefs', 'blockdev', 'dd', 'cmp', 'mkfs.xfs', 'mkfs.ext4'])
if (skip) {
  t.comment(`SKIPPED format-new-volume tests on loop devices: ${skip}`)
  t.skip(`format-new-volume on real loop devices — ${skip}`, () => {})
} else {
  const work = mkdtempSync(join(tmpdir(), 'writ-format-new-'))
  const devices: LoopDevice[] = []
  t.teardown(() => {
    for (const d of devices) d.detach()
    rmSync(work, { recursive: true, force: true })
  })
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, BLANK_PROOF_TIMEOUT: '5', BLANK_PROOF_STATE_DIR: join(work, 'state') }
  const newDevice = (name: string): LoopDevice => {
    const d = createLoopDevice(work, name, 320)
    devices.push(d)
    return d
  }

  t.test('a blank new LUN gets xfs, and the tool says what it did', async (t) => {
    const dev = newDevice('new-lun')
    const res = await runScript(script, ['-L', 'vmdata', dev.path], env)
    t.comment(res.stdout.trim())
    t.equal(res.code, 0, res.stderr)
    t.match(res.stdout, `format-new-volume: ${dev.path} proven blank and readable`)
    t.match(res.stdout, `running mkfs.xfs -L vmdata ${dev.path}`, 'mkfs.xfs without -f')
    t.notMatch(res.stdout, / -f /)
    t.match(res.stdout, new RegExp(`FORMATTED ${dev.path} as xfs \\(UUID [0-9a-f-]{36}\\)`))
    t.equal(fsTypeOf(dev.path), 'xfs')

    const formatted = await sha256Of(dev.path)
    const again = await runScript(script, [dev.path], env)
    t.comment(again.stderr.trim())
    t.not(again.code, 0, 'running it again on the now-formatted LUN is refused')
    t.match(again.stderr, `format-new-volume: REFUSE ${dev.path}: not proven blank and readable`)
    t.equal(await sha256Of(dev.path), formatted, 'the filesystem is untouched')
  })

  t.test('a device with an ext4 signature is refused and left intact', async (t) => {
    const dev = newDevice('signed')
    execFileSync('mkfs.ext4', ['-q', '-F', dev.path])
    const before = await sha256Of(dev.path)
    const res = await runScript(script, [dev.path], env)
    const after = await sha256Of(dev.path)
    t.comment(res.stderr.trim())
    t.comment(`sha256 before: ${before}`)
    t.comment(`sha256 after:  ${after}`)
    t.not(res.code, 0)
    t.match(res.stderr, `format-new-volume: REFUSE ${dev.path}: not proven blank and readable: the first MiB is not all zeros`)
    t.equal(after, before, 'device content unchanged')
    t.equal(fsTypeOf(dev.path), 'ext4')
  })

  t.test('a detached loop device is refused', async (t) => {
    const dev = newDevice('gone')
    dev.detach()
    const res = await runScript(script, [dev.path], env)
    t.comment(res.stderr.trim())
    t.not(res.code, 0)
    t.match(res.stderr, 'REFUSE')
  })

  t.test('usage errors are reported, nothing runs', async (t) => {
    const res = await runScript(script, [], env)
    t.equal(res.code, 64)
    t.match(res.stderr, 'usage: format-new-volume.sh [-L LABEL] DEVICE')
  })
}
