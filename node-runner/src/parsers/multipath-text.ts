/**
 * `multipath -ll`, `multipath -l`, plain `multipath` and `multipathd show maps
 * topology` text, in the modern tree layout (libmultipath/print.c) and the
 * 0.4.x bracket layout (`\_ round-robin 0 [prio=1][active]`).
 */
import {
  MultipathParseError, PathDmStateSchema, PathGroupStatusSchema, featuresQueue,
  type MultipathMap, type MultipathTopology, type Path, type PathGroup,
} from './multipath-topology.js'

/** `4735.224337 | /etc/multipath.conf line 31, duplicate keyword: defaults` and `Aug 31 10:49:09 | …` */
const LOG_LINE_RE = /^(?:\d+\.\d+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) \| /
// print.c `"%A: "`: only lower-case words (create, reload, switchpg, rename, …).
const HEADER_RE = /^(?:([a-z]+): )?(\S+)(?: \(([^()\s]+)\))?(?: (dm-\d+|undef)(?: (.*))?)?$/
const MODERN_ATTRS_RE = /^size=/
const BRACKET_ATTRS_RE = /^\[size=/
const MODERN_GROUP_RE = /^[|`]-\+- (.*)$/
const MODERN_PATH_RE = /^[| ] [|`]- (.*)$/
const BRACKET_GROUP_RE = /^\\_ (.*)$/
const BRACKET_PATH_RE = /^\s+\\_ (.*)$/

interface Line { no: number, text: string }

/**
 * Parses multipath topology text. Config warnings and other log lines are
 * skipped (kept in `skipped`); empty input is an empty topology (no maps).
 * @throws {MultipathParseError} naming the line that does not fit, or when the
 *   text holds no map at all (e.g. a `show paths` table).
 */
export function parseMultipathText(stdout: string): MultipathTopology {
  const lines: Line[] = stdout.split('\n').map((text, i) => ({ no: i + 1, text: text.replace(/\r$/, '').replace(/\s+$/, '') }))
  const maps: MultipathMap[] = []
  const skipped: string[] = []
  let bracket = false
  let map: MultipathMap | undefined
  let group: PathGroup | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as Line
    if (line.text === '') continue
    if (LOG_LINE_RE.test(line.text)) { skipped.push(line.text); continue }
    const nextIndex = nextContentLine(lines, i + 1)
    const next = lines[nextIndex]
    if (next !== undefined && (MODERN_ATTRS_RE.test(next.text) || BRACKET_ATTRS_RE.test(next.text))) {
      map = parseHeader(line)
      group = undefined
      maps.push(map)
      bracket = BRACKET_ATTRS_RE.test(next.text)
      applyAttributes(map, next, bracket)
      i = nextIndex
      continue
    }
    const groupMatch = bracket ? BRACKET_GROUP_RE.exec(line.text) : MODERN_GROUP_RE.exec(line.text)
    if (groupMatch) {
      if (!map) throw new MultipathParseError(`path group line before any map header: "${line.text}"`, line.no)
      group = bracket ? parseBracketGroup(groupMatch[1] as string, map.pathGroups.length + 1, line) : parseModernGroup(groupMatch[1] as string, map.pathGroups.length + 1, line)
      map.pathGroups.push(group)
      continue
    }
    const pathMatch = bracket ? BRACKET_PATH_RE.exec(line.text) : MODERN_PATH_RE.exec(line.text)
    if (pathMatch) {
      if (!group) throw new MultipathParseError(`path line outside a path group: "${line.text}"`, line.no)
      group.paths.push(bracket ? parseBracketPath(pathMatch[1] as string, line) : parseModernPath(pathMatch[1] as string, line))
      continue
    }
    if (map) throw new MultipathParseError(`unexpected line inside map "${map.name}": "${line.text}"`, line.no)
    // Messages before the first map (e.g. "DM multipath kernel driver not loaded") are not topology.
    skipped.push(line.text)
  }
  if (maps.length === 0 && skipped.some((s) => !LOG_LINE_RE.test(s))) {
    const first = skipped.find((s) => !LOG_LINE_RE.test(s)) ?? ''
    const hint = /^(hcil|name|uuid)\b/.test(first) ? ' (this looks like a `multipathd show paths/maps` table, not a topology)' : ''
    throw new MultipathParseError(`no multipath map found in the output${hint}; first line: "${first.slice(0, 120)}"`)
  }
  return { source: bracket ? 'text-bracket' : 'text', maps, skipped }
}

function nextContentLine(lines: Line[], from: number): number {
  for (let j = from; j < lines.length; j++) {
    const l = lines[j] as Line
    if (l.text !== '' && !LOG_LINE_RE.test(l.text)) return j
  }
  return lines.length
}

function parseHeader(line: Line): MultipathMap {
  const m = HEADER_RE.exec(line.text)
  if (!m) throw new MultipathParseError(`map header is not "name (wwid) dm-N vendor,product": "${line.text}"`, line.no)
  const [, action, name, wwid, dm, vpr] = m as unknown as [string, string | undefined, string, string | undefined, string | undefined, string | undefined]
  const map: MultipathMap = {
    name, wwid: wwid ?? name, sysfs: dm === undefined || dm === 'undef' ? null : dm,
    features: '0', queueing: false, pathGroups: [],
  }
  if (action !== undefined) map.action = action
  if (vpr !== undefined && vpr.trim() !== '') {
    // print.c pads vendor and product to their SCSI field widths in some releases ("IBM     ,2145            ").
    const comma = vpr.indexOf(',')
    const vendor = (comma < 0 ? vpr : vpr.slice(0, comma)).trim()
    const product = comma < 0 ? '' : vpr.slice(comma + 1).trim()
    if (vendor) map.vendor = vendor
    if (product) map.product = product
  }
  return map
}

/** `size=50G features='1 queue_if_no_path' hwhandler='1 alua' wp=rw` or `[size=67 GB][features=0][hwhandler=0][rw]` */
function applyAttributes(map: MultipathMap, line: Line, bracket: boolean): void {
  const attrs = new Map<string, string>()
  if (bracket) {
    for (const [, inner] of line.text.matchAll(/\[([^\]]*)\]/g)) {
      const eq = (inner as string).indexOf('=')
      if (eq < 0) attrs.set('wp', inner as string)
      else attrs.set((inner as string).slice(0, eq), unquote((inner as string).slice(eq + 1)))
    }
  } else {
    for (const [, key, quoted, bare] of line.text.matchAll(/(\w+)=(?:'([^']*)'|(\S+))/g)) attrs.set(key as string, (quoted ?? bare) as string)
  }
  const size = attrs.get('size')
  const features = attrs.get('features')
  if (size === undefined || features === undefined) throw new MultipathParseError(`map "${map.name}": size/features line lacks size= or features=: "${line.text}"`, line.no)
  map.size = size
  map.features = features
  map.queueing = featuresQueue(features)
  const hwhandler = attrs.get('hwhandler')
  if (hwhandler !== undefined) map.hwhandler = hwhandler
  const wp = attrs.get('wp')
  if (wp !== undefined) map.writeProtect = wp
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v
}

/** `policy='service-time 0' prio=50 status=active` */
function parseModernGroup(body: string, index: number, line: Line): PathGroup {
  const m = /^policy='([^']*)' prio=(-?\d+) status=(\S+)/.exec(body)
  if (!m) throw new MultipathParseError(`path group line is not "policy='…' prio=N status=…": "${line.text}"`, line.no)
  return { index, selector: m[1] as string, priority: Number(m[2]), status: groupStatus(m[3] as string, line), paths: [] }
}

/** `round-robin 0 [prio=1][active]` or, oldest, `round-robin 0 [enabled]` */
function parseBracketGroup(body: string, index: number, line: Line): PathGroup {
  const first = body.indexOf('[')
  const selector = (first < 0 ? body : body.slice(0, first)).trim()
  let priority: number | null = null
  let status: PathGroup['status'] | undefined
  for (const [, inner] of body.matchAll(/\[([^\]]*)\]/g)) {
    const prio = /^prio=(-?\d+)$/.exec(inner as string)
    if (prio) priority = Number(prio[1])
    else if (PathGroupStatusSchema.safeParse(inner).success) status = inner as PathGroup['status']
  }
  if (status === undefined) throw new MultipathParseError(`path group line has no [active|enabled|disabled|undef] status: "${line.text}"`, line.no)
  return { index, ...(selector ? { selector } : {}), priority, status, paths: [] }
}

function groupStatus(s: string, line: Line): PathGroup['status'] {
  const r = PathGroupStatusSchema.safeParse(s)
  if (!r.success) throw new MultipathParseError(`unknown path group status "${s}"`, line.no)
  return r.data
}

/** `0:0:10:2          sdab 65:176 active undef running` (the checker state may be two words: `i/o pending`) */
function parseModernPath(body: string, line: Line): Path {
  const t = body.trim().split(/\s+/)
  const [hcil, dev, devT, dm] = t
  let k = 4
  const checker = t[k] === 'i/o' && t[k + 1] !== undefined ? `${t[k++]} ${t[k++]}` : t[k++]
  const devState = t[k]
  if (hcil === undefined || dev === undefined || devT === undefined || dm === undefined || checker === undefined || devState === undefined) {
    throw new MultipathParseError(`path line is not "H:C:T:L dev maj:min dm_st chk_st dev_st": "${line.text}"`, line.no)
  }
  return { hcil, dev, devT, dmState: dmState(dm, line), checkerState: checker, devState }
}

/** `3:0:0:1 sdb 8:16 [active][ready]` */
function parseBracketPath(body: string, line: Line): Path {
  const m = /^(\S+)\s+(\S+)\s+(\d+:\d+)\s+\[([^\]]*)\]\[([^\]]*)\]/.exec(body.trim())
  if (!m) throw new MultipathParseError(`path line is not "H:C:T:L dev maj:min [dm_st][chk_st]": "${line.text}"`, line.no)
  return { hcil: m[1] as string, dev: m[2] as string, devT: m[3] as string, dmState: dmState(m[4] as string, line), checkerState: m[5] as string }
}

function dmState(s: string, line: Line): Path['dmState'] {
  const r = PathDmStateSchema.safeParse(s)
  if (!r.success) throw new MultipathParseError(`unknown path dm state "${s}" (expected active, failed or undef)`, line.no)
  return r.data
}
