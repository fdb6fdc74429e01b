/**
 * The multipath parsers on every real output in ../shared/fixtures/multipath:
 * what an operator (or the watchdog) reads out of each one.
 */
import t, { type Test } from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  multipathMapFromJson, parseMultipathdTable, parseOutput, stuckMaps, writeMultipathdMapJson, writeMultipathdMapsJson,
  type MultipathMap, type MultipathTopology,
} from '../node-runner/dist/parsers/index.js'

const DIR = fileURLToPath(new URL('../../shared/fixtures/multipath/', import.meta.url))
const read = (f: string): string => readFileSync(DIR + f, 'utf8')
const covered = new Set<string>()

/** Parses a fixture through the public parser entry point, as a pack action's output would be. */
function topo(t: Test, file: string): MultipathTopology {
  covered.add(file)
  const r = parseOutput('multipath', read(file))
  t.equal(r.error, undefined, `${file} parses`)
  return r.parsed as MultipathTopology
}
const map = (tp: MultipathTopology, name: string): MultipathMap => {
  const m = tp.maps.find((x) => x.name === name)
  if (!m) throw new Error(`no map ${name}`)
  return m
}
const statuses = (m: MultipathMap): string[] => m.pathGroups.map((g) => g.status)
const paths = (m: MultipathMap): string[] => m.pathGroups.flatMap((g) => g.paths.map((p) => `${p.dev} ${p.dmState} ${p.checkerState} ${p.devState ?? '-'}`))
const stuck = (tp: MultipathTopology): string[] => stuckMaps(tp).map((m) => m.name)

t.test('modern tree format', async (t) => {
  t.test('map named by WWID only, two groups of four paths', async (t) => {
    const tp = topo(t, 'll_two_pg_active_enabled_wwid.txt')
    const m = map(tp, '3624a93703c9f34490f6140a100011010')
    t.equal(m.wwid, m.name, 'no alias: the name is the WWID')
    t.match(m, { sysfs: 'dm-2', vendor: 'PURE', product: 'FlashArray', size: '3.0T', features: '1 retain_attached_hw_handler', hwhandler: '1 alua', writeProtect: 'rw', queueing: false })
    t.same(statuses(m), ['active', 'enabled'])
    t.same(m.pathGroups.map((g) => [g.priority, g.paths.length]), [[50, 4], [50, 4]])
    t.same(m.pathGroups[0]?.paths.map((p) => p.hcil), ['1:0:0:1', '9:0:0:1', '11:0:0:1', '13:0:0:1'])
    t.match(m.pathGroups[1]?.paths[3], { hcil: '14:0:0:1', dev: 'sdi', devT: '8:128', dmState: 'active', checkerState: 'ready', devState: 'running' })
    t.same(stuck(tp), [])
  })
  t.test('ALUA failover: prio 50 active, prio 10 enabled, padded vendor', async (t) => {
    const m = map(topo(t, 'll_alua_prio50_prio10_failover.txt'), 'mpathbt')
    t.match(m, { wwid: '360014059ca317516a69465c883a29603', sysfs: 'dm-1', vendor: 'LIO-ORG', product: 'IBLOCK', features: '0', queueing: false })
    t.same(m.pathGroups.map((g) => [g.selector, g.priority, g.status, g.paths[0]?.dev]), [['queue-length 0', 50, 'active', 'sde'], ['queue-length 0', 10, 'enabled', 'sdc']])
  })
  t.test('alias without vendor/product; the same map before and after queue_if_no_path', async (t) => {
    const before = map(topo(t, 'll_alias_features_0.txt'), 'yellow')
    const after = map(topo(t, 'll_alias_queue_if_no_path.txt'), 'yellow')
    t.match(before, { wwid: '36000b5d0006a0000006a14e7000b0000', sysfs: 'dm-0', features: '0', queueing: false })
    t.equal(before.vendor, undefined, 'nothing after dm-0')
    t.match(after, { features: '1 queue_if_no_path', queueing: true })
    t.same(after.pathGroups.map((g) => [g.priority, g.status]), [[130, 'active'], [130, 'enabled']])
  })
  t.test('create: action prefix, dm name and states undef — unknown, not stuck', async (t) => {
    const tp = topo(t, 'multipath_create_status_undef.txt')
    const m = map(tp, 'yellow')
    t.match(m, { action: 'create', sysfs: null, writeProtect: 'undef' })
    t.same(statuses(m), ['undef', 'undef'])
    t.same(paths(m), ['sda undef ready running', 'sdc undef ready running'])
    t.same(stuck(tp), [], 'all groups undef: not reported stuck')
  })
  t.test('only ALUA standby (ghost) paths left, single active group', async (t) => {
    const tp = topo(t, 'll_single_pg_ghost_paths_queue_if_no_path.txt')
    const m = map(tp, 'mpathal')
    t.match(m, { wwid: '2e0176ad6309077166c9ce90033bfa248_1', vendor: 'Nimble', product: 'Server', queueing: true })
    t.same(paths(m), ['sdg active ghost running', 'sdh active ghost running'])
    t.same(stuck(tp), [])
  })
  t.test('four groups, the second one active, IBM padded to field width', async (t) => {
    const m = map(topo(t, 'll_four_pg_alua_alias_padded_vendor.txt'), 'DATA01')
    t.match(m, { vendor: 'IBM', product: '2145', size: '500G', queueing: true })
    t.same(m.pathGroups.map((g) => `${g.index}:${g.priority}:${g.status}`), ['1:50:enabled', '2:50:active', '3:10:enabled', '4:10:enabled'])
    t.same(m.pathGroups.map((g) => g.paths[0]?.hcil), ['8:0:1:0', '10:0:1:0', '8:0:0:0', '10:0:0:0'])
  })
  t.test('multipath -l: checker undef on 14 paths, wide hcil column', async (t) => {
    const tp = topo(t, 'multipath_l_undef_seven_paths_per_pg.txt')
    const m = map(tp, 'mpathe')
    t.same(m.pathGroups.map((g) => g.paths.length), [7, 7])
    t.ok(m.pathGroups.every((g) => g.paths.every((p) => p.checkerState === 'undef' && p.dmState === 'active')))
    t.match(m.pathGroups[0]?.paths[0], { hcil: '0:0:10:2', dev: 'sdab', devT: '65:176' })
    t.same(stuck(tp), [], 'an active group exists (and no checker ran)')
  })
  t.test('leading config warning line is skipped, two maps follow', async (t) => {
    const tp = topo(t, 'll_two_maps_mpatha_config_warning_line.txt')
    t.same(tp.maps.map((m) => m.name), ['mpatha', 'mpathb'])
    t.same(tp.skipped, ['4735.224337 | /etc/multipath.conf line 31, duplicate keyword: defaults'])
    t.same(map(tp, 'mpathb').pathGroups.map((g) => g.paths[0]?.dev), ['sdd', 'sdc'])
  })
  t.test('two healthy maps, hcil of different widths', async (t) => {
    const tp = topo(t, 'll_two_maps_mpatha_mpathb_normal.txt')
    t.equal(tp.skipped.length, 1)
    t.same(tp.maps.map((m) => [m.name, m.sysfs, statuses(m).join(',')]), [['mpatha', 'dm-2', 'active,enabled'], ['mpathb', 'dm-3', 'active,enabled']])
    t.same(map(tp, 'mpathb').pathGroups.map((g) => g.paths[0]?.hcil), ['5:0:0:0', '6:0:0:0'])
    t.same(stuck(tp), [])
  })
  t.test('failed faulty paths: in the active group of mpatha, the enabled group of mpathb', async (t) => {
    const tp = topo(t, 'll_two_maps_failed_faulty_running.txt')
    t.same(map(tp, 'mpatha').pathGroups.map((g) => [g.status, g.priority, g.paths[0]?.dmState, g.paths[0]?.checkerState]), [['active', 0, 'failed', 'faulty'], ['enabled', 50, 'active', 'ready']])
    t.same(map(tp, 'mpathb').pathGroups.map((g) => [g.status, g.priority, g.paths[0]?.dmState, g.paths[0]?.checkerState]), [['enabled', 0, 'failed', 'faulty'], ['active', 50, 'active', 'ready']])
    t.same(stuck(tp), [])
  })
  t.test('transitional failed ready: kernel still failed, checker ready', async (t) => {
    const tp = topo(t, 'll_two_maps_failed_ready_running.txt')
    t.same(paths(map(tp, 'mpatha')), ['sdd failed ready running', 'sde active ready running'])
    t.same(paths(map(tp, 'mpathb')), ['sdb failed ready running', 'sdc active ready running'])
  })
  t.test('no active group in either map: both stuck', async (t) => {
    const tp = topo(t, 'll_no_active_pg_all_enabled_two_maps.txt')
    t.ok(tp.maps.every((m) => statuses(m).every((s) => s === 'enabled')))
    t.same(stuck(tp), ['mpatha', 'mpathb'])
  })
  t.test('no active group and one failed faulty path per map: still stuck (the other path is ready)', async (t) => {
    const tp = topo(t, 'll_no_active_pg_all_enabled_failed_faulty.txt')
    t.same(paths(map(tp, 'mpatha')), ['sdb failed faulty running', 'sdc active ready running'])
    t.same(paths(map(tp, 'mpathb')), ['sdd active ready running', 'sde failed faulty running'])
    t.same(stuck(tp), ['mpatha', 'mpathb'])
  })
})

t.test('old bracket format (multipath-tools 0.4.x)', async (t) => {
  t.test('reload: prefix, [rw], prio in brackets', async (t) => {
    const tp = topo(t, 'topo_old_bracket_reload_prefix.txt')
    t.equal(tp.source, 'text-bracket')
    const m = map(tp, 'mpath5')
    t.match(m, { action: 'reload', wwid: '360060e801045249004f2a5f900000031', sysfs: 'dm-7', vendor: 'HITACHI', product: 'DF600F', size: '128G', features: '0', hwhandler: '0', writeProtect: 'rw' })
    t.same(m.pathGroups.map((g) => [g.selector, g.priority, g.status]), [['round-robin 0', 1, 'active'], ['round-robin 0', 0, 'enabled']])
    t.same(paths(m), ['sdb active ready -', 'sdc active ready -'])
  })
  t.test('no active group (prio 10 and 6): stuck; size with a blank', async (t) => {
    const tp = topo(t, 'topo_old_bracket_no_active_pg_prio.txt')
    const m = map(tp, 'mpath0')
    t.match(m, { sysfs: null, size: '67 GB', features: '1 queue_if_no_path', queueing: true })
    t.same(m.pathGroups.map((g) => [g.priority, g.status]), [[10, 'enabled'], [6, 'enabled']])
    t.same(stuck(tp), ['mpath0'])
  })
  t.test('no active group, both prio 0: stuck', async (t) => {
    const tp = topo(t, 'topo_old_bracket_no_active_pg_prio0.txt')
    t.same(map(tp, 'mpath0').pathGroups.map((g) => g.priority), [0, 0])
    t.same(stuck(tp), ['mpath0'])
  })
  t.test('oldest style: no prio, quoted features, only the last of four groups active', async (t) => {
    const tp = topo(t, 'topo_old_bracket_four_pg_one_active.txt')
    const m = map(tp, 'mpath1')
    t.match(m, { features: '1 queue_if_no_path', hwhandler: '0', queueing: true, size: '33 GB' })
    t.same(m.pathGroups.map((g) => [g.priority, g.status]), [[null, 'enabled'], [null, 'enabled'], [null, 'enabled'], [null, 'active']])
    t.same(m.pathGroups.map((g) => g.paths[0]?.dev), ['sdc', 'sde', 'sdg', 'sdl'])
    t.ok(m.pathGroups.every((g) => g.paths[0]?.checkerState === 'undef'))
  })
})

t.test('multipathd show tables: refused as a topology with a clear error, parsed by the table parser', async (t) => {
  const tables: Record<string, (tb: ReturnType<typeof parseMultipathdTable>) => void> = {
    'show_paths_failed_faulty_orphan.txt': (tb) => {
      t.same(tb.columns, ['hcil', 'dev', 'dev_t', 'pri', 'dm_st', 'chk_st', 'dev_st', 'next_check'])
      t.same(tb.rows.map((r) => [r.dev, r.dm_st, r.chk_st, r.next_check]), [['sda', 'undef', 'ready', 'orphan'], ['sdc', 'active', 'ready', 'XXX....... 7/20'], ['sdb', 'failed', 'faulty', '.......... 1/20'], ['sdd', 'active', 'ready', 'XXX....... 6/20']])
    },
    'show_paths_old_bracket_format.txt': (tb) => {
      t.notOk(tb.columns.includes('dev_st'), 'old table has no dev_st column')
      t.same(tb.rows.map((r) => [r.dev, r.dm_st, r.chk_st, r.next_check]), [['sda', '[undef]', '[undef]', '[orphan]'], ['sdb', '[active]', '[ready]', 'X......... 3/20'], ['sdc', '[active]', '[ready]', 'XXXXXXXXX. 18/20'], ['sdd', '[active]', '[ready]', 'XXXXXXXXXX 20/20']])
    },
    'show_paths_single_path.txt': (tb) => t.same(tb.rows.map((r) => [r.hcil, r.dm_st, r.next_check]), [['2:0:0:0', 'undef', 'orphan'], ['3:0:0:0', 'active', 'XXXXXX.... 13/20']]),
    'show_maps.txt': (tb) => t.same(tb.rows, [{ name: '36000402001f45eb56424ca6800000000', sysfs: 'dm-0', uuid: '36000402001f45eb56424ca6800000000' }]),
    'show_maps_status.txt': (tb) => t.match(tb.rows[0], { failback: '-', queueing: '-', paths: '1', 'dm-st': 'active', write_prot: 'rw' }),
    'show_maps_stats.txt': (tb) => t.match(tb.rows[0], { path_faults: '0', switch_grp: '0', map_loads: '1', total_q_time: '0', q_timeouts: '0' }),
    'show_paths_format_uuid_adapter_wwpn_lun.txt': (tb) => {
      t.same(tb.columns, ['uuid', 'host adapter', 'target WWPN', 'LUN hex'])
      t.same(tb.rows.map((r) => r['host adapter']), ['0.0.5080', '0.0.5080', '0.0.50c0', '0.0.50c0'])
      t.equal(tb.rows[3]?.['target WWPN'], '0x500507680b26c448')
    },
  }
  for (const [file, check] of Object.entries(tables)) {
    covered.add(file)
    const r = parseOutput('multipath', read(file))
    t.equal(r.parsed, undefined, `${file}: no topology`)
    t.match(r.error, /no multipath map found/, `${file}: says why`)
    check(parseMultipathdTable(read(file)))
  }
})

t.test('multipathd JSON', async (t) => {
  const frag = (f: string): unknown => { covered.add(f); return JSON.parse(read(f)) }
  const iscsiPath = frag('json_fragment_path_iscsi.json') as Record<string, unknown>
  const fcPath = frag('json_fragment_path_fc_no_lun_hex.json') as Record<string, unknown>
  const group = frag('json_fragment_path_group.json') as Record<string, unknown>
  const iscsiMap = frag('json_fragment_map_iscsi_path_groups_emptied.json') as Record<string, unknown>
  const fcMap = frag('json_fragment_map_fc_path_groups_emptied.json') as Record<string, unknown>

  t.test('real map objects (path groups emptied by their author)', async (t) => {
    t.match(multipathMapFromJson(iscsiMap), { name: '3624a9370e92ace0b12e941bf000cb4d5', sysfs: 'dm-31', vendor: 'PURE', product: 'FlashArray', revision: '8888', hwhandler: '1 alua', noPathRetry: 'off', failback: 'immediate', activePaths: 8, pathFaults: 23, queueing: false, pathGroups: [] })
    t.equal(multipathMapFromJson(iscsiMap).action, undefined, 'empty action is no action')
    t.match(multipathMapFromJson(fcMap), { sysfs: 'dm-0', pathFaults: 0, activePaths: 8 })
  })
  t.test('a show maps json reply assembled from the real fragments', async (t) => {
    // The group fragment lost its paths array; give it the two real path objects, as multipathd would print them.
    const doc = { major_version: 0, minor_version: 1, maps: [{ ...iscsiMap, path_groups: [{ ...group, paths: [iscsiPath, fcPath] }] }] }
    const r = parseOutput('multipath', JSON.stringify(doc, null, 3))
    t.equal(r.error, undefined)
    const m = (r.parsed as MultipathTopology).maps[0] as MultipathMap
    t.match(m.pathGroups[0], { index: 1, selector: 'service-time 0', priority: 50, status: 'active', marginal: false })
    t.match(m.pathGroups[0]?.paths[0], { dev: 'sdag', devT: '66:0', checker: 'tur', priority: 50, targetWwnn: 'iqn.2010-06.com.purestorage:flasharray.1007a309fb52d942', hostAdapter: '192.168.131.31', lunHex: '0x000e000000000000' })
    t.equal(m.pathGroups[0]?.paths[0]?.hostWwnn, undefined, '"[undef]" means not applicable')
    t.match(m.pathGroups[0]?.paths[1], { dev: 'sdcx', hostWwpn: '0x10000090fa678144', hostAdapter: '0000:00:03.0' })
    t.equal(m.pathGroups[0]?.paths[1]?.lunHex, undefined, 'older multipathd: no lun_hex')
  })
  t.test('fragments alone are named, not mistaken for a reply', async (t) => {
    t.match(parseOutput('multipath', read('json_fragment_path_group.json')).error, /one path group object/)
    t.match(parseOutput('multipath', read('json_fragment_map_fc_path_groups_emptied.json')).error, /one map object/)
    t.match(parseOutput('multipath', read('json_fragment_path_iscsi.json')).error, /one path object/)
    t.throws(() => multipathMapFromJson({ ...iscsiMap, path_groups: [group] }), /path_groups\[0\]\.paths/, 'a group without paths is malformed, named by field')
  })
  t.test('print.c layout with unescaped strings, show map X json, truncation', async (t) => {
    const ll = parseOutput('multipath', read('ll_no_active_pg_all_enabled_failed_faulty.txt')).parsed as MultipathTopology
    const reply = writeMultipathdMapsJson(ll)
    t.match(reply, /^\{\n {3}"major_version": 0,\n {3}"minor_version": 1,\n {3}"maps": \[\{\n {6}"name" : "mpatha",/)
    const back = parseOutput('multipath', reply).parsed as MultipathTopology
    t.equal(back.source, 'json')
    t.same(back.maps.map((m) => [m.name, statuses(m), paths(m)]), ll.maps.map((m) => [m.name, statuses(m), paths(m)]), 'same maps, groups and path states as the text')
    t.same(stuck(back), ['mpatha', 'mpathb'])
    const weird = { ...(ll.maps[0] as MultipathMap), vendor: 'ACME "Q" \\ Ltd' }
    const one = parseOutput('multipath', writeMultipathdMapJson(weird))
    t.equal(one.error, undefined, 'raw quote and backslash in a value are tolerated')
    t.equal((one.parsed as MultipathTopology).maps[0]?.vendor, 'ACME "Q" \\ Ltd')
    const cut = parseOutput('multipath', reply.slice(0, Math.floor(reply.length * 0.6)))
    t.match(cut.error, /truncated/, 'a reply cut short (hpe-storage/csi-driver#461) is a clear error')
    t.match(parseOutput('multipath', '{\n   "major_version": 1,\n   "minor_version": 0,\n   "maps": []\n}').error, /unsupported multipathd JSON major_version 1/)
    t.match(parseOutput('multipath', '{ "major_version": 0, "minor_version": 1, "maps": [{ "name": "x" }] }').error, /maps\[0\]\.uuid/)
  })
})

t.test('text that is not a topology, and edge cases', async (t) => {
  t.same((parseOutput('multipath', '').parsed as MultipathTopology).maps, [], 'no maps: empty output is an empty topology')
  t.match(parseOutput('multipath', 'DM multipath kernel driver not loaded\n').error, /no multipath map found/)
  const broken = read('ll_alias_features_0.txt').replace('status=enabled', 'status=sleeping')
  t.match(parseOutput('multipath', broken).error, /line 5: unknown path group status "sleeping"/)
  const pending = read('ll_alias_features_0.txt').replace('8:32   active ready running', '8:32   active i/o pending running')
  t.match((parseOutput('multipath', pending).parsed as MultipathTopology).maps[0]?.pathGroups[1]?.paths[0], { checkerState: 'i/o pending', devState: 'running' }, 'two-word checker state')
})

t.test('every multipath fixture is covered by an assertion above', async (t) => {
  const all = readdirSync(DIR).filter((f) => f !== 'README.md').sort()
  t.same(all.filter((f) => !covered.has(f)), [], 'no fixture left unchecked')
})
