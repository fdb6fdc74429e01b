/**
 * Writes a topology back out byte for byte the way multipathd prints `show
 * maps json` (libmultipath/print.c templates: 3-blank indent, `" : "` between
 * scalar keys and values, string values NOT escaped). multipathd doubles in
 * tests and the watchdog bench use it to answer like the real daemon.
 */
import type { MultipathMap, MultipathTopology, Path, PathGroup } from './multipath-topology.js'

const I = '   '

/** `multipathd show maps json` for these maps. Fields the model lacks get multipathd's placeholders. */
export function writeMultipathdMapsJson(topology: Pick<MultipathTopology, 'maps'>): string {
  const maps = topology.maps.map((m) => mapJson(m)).join(',')
  return `{\n${I}"major_version": 0,\n${I}"minor_version": 1,\n${I}"maps": [${maps}]\n}\n`
}

/** `multipathd show map <name> json`. */
export function writeMultipathdMapJson(map: MultipathMap): string {
  return `{\n${I}"major_version": 0,\n${I}"minor_version": 1,\n${I}"map":${mapJson(map)}\n}\n`
}

function mapJson(m: MultipathMap): string {
  const activePaths = m.activePaths ?? m.pathGroups.reduce((n, g) => n + g.paths.filter((p) => p.dmState === 'active').length, 0)
  const fields: Array<[string, string | number]> = [
    ['name', m.name], ['uuid', m.wwid], ['sysfs', m.sysfs ?? 'undef'], ['failback', m.failback ?? 'immediate'],
    ['queueing', m.noPathRetry ?? (m.queueing ? 'on' : 'off')], ['paths', activePaths], ['write_prot', m.writeProtect ?? 'rw'],
    ['dm_st', m.dmState ?? 'active'], ['features', m.features], ['hwhandler', m.hwhandler ?? '0'], ['action', m.action ?? ''],
    ['path_faults', m.pathFaults ?? 0], ['vend', m.vendor ?? ''], ['prod', m.product ?? ''], ['rev', m.revision ?? ''],
    ['switch_grp', 0], ['map_loads', 0], ['total_q_time', 0], ['q_timeouts', 0],
  ]
  const groups = m.pathGroups.map((g) => groupJson(g)).join(',')
  return `{\n${scalars(fields, 2)}${I.repeat(2)}"path_groups": [${groups}]\n${I}}`
}

function groupJson(g: PathGroup): string {
  const fields: Array<[string, string | number]> = [
    ['selector', g.selector ?? 'service-time 0'], ['pri', g.priority ?? 0], ['dm_st', g.status],
    ['marginal_st', g.marginal ? 'marginal' : 'normal'], ['group', g.index],
  ]
  const paths = g.paths.map((p) => pathJson(p, g)).join(',')
  return `{\n${scalars(fields, 3)}${I.repeat(3)}"paths": [${paths}]\n${I.repeat(2)}}`
}

function pathJson(p: Path, g: PathGroup): string {
  const fields: Array<[string, string | number]> = [
    ['dev', p.dev], ['dev_t', p.devT ?? '#:#'], ['dm_st', p.dmState], ['dev_st', p.devState ?? 'running'],
    ['chk_st', p.checkerState], ['checker', p.checker ?? 'tur'], ['pri', p.priority ?? g.priority ?? 0],
    ['host_wwnn', p.hostWwnn ?? '[undef]'], ['target_wwnn', p.targetWwnn ?? '[undef]'], ['host_wwpn', p.hostWwpn ?? '[undef]'],
    ['target_wwpn', p.targetWwpn ?? '[undef]'], ['host_adapter', p.hostAdapter ?? '[undef]'], ['lun_hex', p.lunHex ?? '[undef]'],
    ['marginal_st', p.marginal ? 'marginal' : 'normal'],
  ]
  return `{\n${scalars(fields, 4, true)}${I.repeat(3)}}`
}

function scalars(fields: Array<[string, string | number]>, depth: number, last = false): string {
  return fields.map(([k, v], i) => {
    const sep = last && i === fields.length - 1 ? '' : ','
    return `${I.repeat(depth)}"${k}" : ${typeof v === 'number' ? String(v) : `"${v}"`}${sep}\n`
  }).join('')
}
