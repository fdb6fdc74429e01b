/**
 * Scenarios 1 and 2 on a real kernel (guest/scenarios/wipe.sh): a LUN with
 * ext4 and a known file, its multipath map queueing with no active group,
 * every path failed, and a CSI-style routine that probes with blkid and
 * formats on exit 2. Without writ the file is gone; with writ's mkfs guard
 * in front of mkfs.ext4 the format is refused within the guard's timeout and
 * the file is intact. The verdict comes from the disk image itself, read on
 * this machine with debugfs after the VM is gone, and from the guest's
 * checksum of the file.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { labSuite, mapState, one, onHost, resultLines, sha256OnHost } from './lab-suite.js'

const GUARD_TIMEOUT_S = 5
const lab = await labSuite(t)

/** debugfs (e2fsprogs) on the LUN image: the file's bytes, or why there are none. */
function fileOnImage(image: string, path: string): { sha256?: string, error?: string, uuid: string } {
  const uuid = onHost('blkid', ['-p', '-s', 'UUID', '-o', 'value', image]).stdout.trim()
  const dir = mkdtempSync(join(tmpdir(), 'writ-lab-dump-'))
  try {
    const out = join(dir, 'file')
    const r = onHost('debugfs', ['-R', `dump ${path} ${out}`, image])
    if (/not found|File not found/i.test(r.stderr)) return { error: r.stderr.trim().split('\n').pop() ?? 'not found', uuid }
    return { sha256: sha256OnHost(out), uuid }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (lab) {
  t.test('1. the wipe (control experiment): a probe of a queueing map reads "empty" and mkfs destroys the data', async (t) => {
    const wwn = '5000c50015ea7101'
    const vm = await lab.boot('wipe', { scenario: 'wipe', luns: [{ wwn, sizeMiB: 128 }], args: { wwn, guard: '0' }, timeoutMs: 240_000 })
    const { exit, end } = await vm.finished()
    t.comment(`scenario 1 result lines (VM ${(exit.ms / 1000).toFixed(1)} s):\n${resultLines(vm)}`)
    t.equal(end.rc, '0', 'the scenario ran to its end')

    const written = one(vm, 'data_written')
    const assembled = mapState(one(vm, 'map_assembled').state)
    t.same(assembled.groups, ['E', 'E'], 'multipathd assembled the map with every path group enabled and none active')
    t.ok(assembled.queueing, 'and queue_if_no_path')
    t.same(mapState(one(vm, 'paths_failed').state).paths.map((p) => p.state), ['F', 'F'], 'every path failed')
    t.same(vm.events('error'), [], 'the scenario reported no error')
    t.ok(vm.events('probe_queued').length === 1, 'the routine\'s blkid probe queued on the map')
    const probe = one(vm, 'csi_probe')
    t.equal(probe.rc, '2', 'blkid exited 2 once queueing was switched off…')
    t.equal(probe.output, '', '…with no output: exactly what a blank disk answers')
    const cycled = one(vm, 'queueing_cycled')
    t.ok(Number(probe.t) <= Number(cycled.t), `the probe returned (${probe.t} s) before queueing was back (${cycled.t} s): none of its reads queued again`)
    t.equal(one(vm, 'csi_decision').action, 'format', 'so the routine formats')
    const mkfs = one(vm, 'csi_mkfs')
    t.ok(Number(mkfs.started) >= Number(cycled.t), `the format started (${mkfs.started} s) only once queueing was back (${cycled.t} s), so its writes queued`)
    t.equal(one(vm, 'before_paths_return').format_waiting, 'yes', 'mkfs.ext4 waited on the map (D state) until the paths returned')
    t.equal(mkfs.rc, '0', 'and mkfs.ext4 succeeds once the paths are back')

    const after = one(vm, 'data_after')
    t.equal(after.present, 'no', 'the guest finds the known file gone')
    t.not(after.fs_uuid, written.fs_uuid, `a different filesystem: ${written.fs_uuid} became ${after.fs_uuid}`)
    const onImage = fileOnImage(vm.lunImages[0] as string, '/known.bin')
    t.comment(`on the LUN image (host debugfs): known.bin ${onImage.sha256 ?? `absent (${onImage.error})`}, fs UUID ${onImage.uuid}`)
    t.equal(onImage.sha256, undefined, 'the disk image itself holds no known.bin: the data is lost')
    t.equal(onImage.uuid, after.fs_uuid, 'and carries the new filesystem')
  })

  t.test('2. the guard: the same routine through writ\'s mkfs guard is refused within its timeout; the data is intact', async (t) => {
    const wwn = '5000c50015ea7102'
    const vm = await lab.boot('guard', { scenario: 'wipe', luns: [{ wwn, sizeMiB: 128 }], args: { wwn, guard: '1', guard_timeout: String(GUARD_TIMEOUT_S) }, timeoutMs: 240_000 })
    const { exit, end } = await vm.finished()
    t.comment(`scenario 2 result lines (VM ${(exit.ms / 1000).toFixed(1)} s):\n${resultLines(vm)}`)
    t.equal(end.rc, '0', 'the scenario ran to its end')

    const written = one(vm, 'data_written')
    t.equal(one(vm, 'guard_installed').allow_list, `3${wwn}`, 'the LUN was even allow-listed as new (the worst case)')
    t.same(mapState(one(vm, 'paths_failed').state).paths.map((p) => p.state), ['F', 'F'], 'every path failed')
    t.same(vm.events('error'), [], 'the scenario reported no error')
    const probe = one(vm, 'csi_probe')
    t.same([probe.rc, probe.output], ['2', ''], 'the probe read "empty" as before')
    t.equal(one(vm, 'csi_decision').mkfs, '/usr/local/sbin/mkfs.ext4', 'the routine\'s mkfs.ext4 is the guard')
    const mkfs = one(vm, 'csi_mkfs')
    const cycled = one(vm, 'queueing_cycled')
    t.ok(Number(probe.t) <= Number(cycled.t) && Number(mkfs.started) >= Number(cycled.t),
      `the probe returned (${probe.t} s) before queueing was back (${cycled.t} s), the guard started after (${mkfs.started} s): its read meets a queueing map`)
    const took = Number(mkfs.ended) - Number(mkfs.started)
    t.equal(mkfs.rc, '32', 'the guard refused (exit 32)')
    t.match(mkfs.output, /^mkfs-guard: REFUSE \/dev\/mapper\/mpatha: allow-listed, but not proven blank and readable: direct read of the first MiB did not complete within 5s/m, 'because its direct read did not complete')
    t.ok(took >= GUARD_TIMEOUT_S && took < GUARD_TIMEOUT_S * 3, `within its timeout: ${took.toFixed(2)} s for a ${GUARD_TIMEOUT_S} s timeout`)
    const before = one(vm, 'before_paths_return')
    t.equal(before.stage_running, 'no', 'the routine had given up before any path returned')
    t.same(mapState(before.state).paths.map((p) => p.state), ['F', 'F'], 'while the paths were still failed')

    const after = one(vm, 'data_after')
    t.equal(after.present, 'yes', 'after the paths are reinstated the guest finds the file')
    t.equal(after.sha256, written.sha256, 'with the same content')
    t.equal(after.fs_uuid, written.fs_uuid, 'on the same filesystem')
    const onImage = fileOnImage(vm.lunImages[0] as string, '/known.bin')
    t.comment(`on the LUN image (host debugfs): known.bin sha256 ${onImage.sha256 ?? onImage.error}, fs UUID ${onImage.uuid}`)
    t.equal(onImage.sha256, written.sha256, 'the disk image holds the file, byte for byte')
  })
}
