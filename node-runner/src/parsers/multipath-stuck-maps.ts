/**
 * The condition behind the wipe: a map with usable paths but no active path
 * group. The first I/O to it queues until the kernel promotes a group.
 */
import type { MultipathMap, MultipathTopology } from './multipath-topology.js'

/** Checker states that mean the path can carry I/O (ghost = ALUA standby, usable after a group switch). */
const USABLE_CHECKER_STATES = new Set(['ready', 'ghost'])

/**
 * True when no path group of the map is `active` while at least one path's
 * checker says `ready` or `ghost`.
 *
 * A map whose groups are ALL `undef` is not stuck but unknown: `multipath -l`
 * (no checkers run), a `create:` dry run, or a map not loaded yet print
 * `status=undef`, and kicking a map on that evidence would put I/O on maps
 * nobody has looked at. Likewise a map with no groups at all is not stuck.
 */
export function isMapStuck(map: MultipathMap): boolean {
  if (map.pathGroups.length === 0) return false
  if (map.pathGroups.every((g) => g.status === 'undef')) return false
  if (map.pathGroups.some((g) => g.status === 'active')) return false
  return map.pathGroups.some((g) => g.paths.some((p) => USABLE_CHECKER_STATES.has(p.checkerState)))
}

/** Maps with no active path group but a usable path (see {@link isMapStuck}). */
export function stuckMaps(topology: MultipathTopology): MultipathMap[] {
  return topology.maps.filter(isMapStuck)
}
