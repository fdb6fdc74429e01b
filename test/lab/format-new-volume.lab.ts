/**
 * Scenario 4 (guest/scenarios/format.sh): jobs/scripts/format-new-volume.sh
 * on a real multipath map of a genuinely blank LUN. Refused while the map
 * queues with every path failed (and nothing written), xfs once the paths
 * are back, refused the second time; the image is checked on this machine.
 */
import t from 'tap'
import { labSuite, mapState, one, onHost, resultLines } from './lab-suite.js'

const TIMEOUT_S = 5
const lab = await labSuite(t)

if (lab) {
  t.test('4. format-new-volume.sh: refuses on the queueing map, formats the blank LUN, refuses the second time', async (t) => {
    const wwn = '5000c50015ea7104'
    // mkfs.xfs wants at least 300 MiB.
    const vm = await lab.boot('format', { scenario: 'format', luns: [{ wwn, sizeMiB: 320 }], args: { wwn, timeout: String(TIMEOUT_S) }, timeoutMs: 240_000 })
    const { exit, end } = await vm.finished()
    t.comment(`scenario 4 result lines (VM ${(exit.ms / 1000).toFixed(1)} s):\n${resultLines(vm)}`)
    t.equal(end.rc, '0', 'the scenario ran to its end')

    const queueing = one(vm, 'format_while_queueing')
    const state = mapState(queueing.state)
    t.ok(state.queueing && state.paths.every((p) => p.state === 'F'), 'first run: every path failed, the map queueing')
    t.equal(queueing.rc, '32', 'refused')
    t.match(queueing.stderr, /^format-new-volume: REFUSE \/dev\/mapper\/mpatha: not proven blank and readable: direct read of the first MiB did not complete within 5s/, 'because its read of the LUN did not complete')
    const took = Number(queueing.ended) - Number(queueing.started)
    t.ok(took >= TIMEOUT_S && took < TIMEOUT_S * 3, `within its timeout: ${took.toFixed(2)} s for ${TIMEOUT_S} s`)
    t.equal(queueing.stdout, '', 'and it ran no mkfs')
    const restored = one(vm, 'paths_restored')
    t.equal(restored.nonzero_bytes_in_first_mib, '0', 'after the paths return the LUN is still all zeros: nothing was written')
    t.equal(restored.blkid, 'rc=2', 'and carries no signature')

    const blank = one(vm, 'format_blank')
    t.equal(blank.rc, '0', 'second run, healthy paths: formatted')
    t.match(blank.stdout, /proven blank and readable/, 'after proving it blank and readable')
    t.match(blank.stdout, /running mkfs\.xfs -L labdata \/dev\/mapper\/mpatha\n/, 'mkfs.xfs without -f')
    const formatted = one(vm, 'formatted')
    t.same([formatted.type, formatted.label], ['xfs', 'labdata'], 'the map holds xfs labelled labdata')

    const again = one(vm, 'format_again')
    t.equal(again.rc, '32', 'third run: refused')
    t.match(again.stderr, /not proven blank and readable: the first MiB is not all zeros: the device holds data/, 'the LUN now holds data')
    t.equal(one(vm, 'after_second').uuid, formatted.uuid, 'the filesystem is untouched (same UUID)')
    t.equal(one(vm, 'mounted').fs, 'xfs', 'and mounts')

    const host = onHost('blkid', ['-p', '-o', 'export', vm.lunImages[0] as string]).stdout
    t.comment(`on the LUN image (host blkid -p): ${host.trim().replace(/\n/g, ' ')}`)
    t.match(host, /^TYPE=xfs$/m, 'the disk image holds xfs')
    t.match(host, new RegExp(`^UUID=${formatted.uuid}$`, 'm'), 'the one the tool made')
  })
}
