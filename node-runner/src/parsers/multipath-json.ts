/**
 * `multipathd show maps json` and `multipathd show map <map> json`, laid out
 * by libmultipath/print.c (`snprint_multipath_topology_json`,
 * `snprint_multipath_map_json`).
 */
import { z } from 'zod'
import {
  MultipathParseError, PathDmStateSchema, PathGroupStatusSchema, featuresQueue,
  type MultipathMap, type MultipathTopology, type Path, type PathGroup,
} from './multipath-topology.js'

const RawPathSchema = z.object({
  dev: z.string().min(1), dev_t: z.string().optional(), dm_st: PathDmStateSchema, dev_st: z.string().optional(),
  chk_st: z.string().min(1), checker: z.string().optional(), pri: z.number().int().optional(),
  host_wwnn: z.string().optional(), target_wwnn: z.string().optional(), host_wwpn: z.string().optional(),
  target_wwpn: z.string().optional(), host_adapter: z.string().optional(), lun_hex: z.string().optional(),
  marginal_st: z.string().optional(),
})
const RawGroupSchema = z.object({
  selector: z.string().optional(), pri: z.number().int().optional(), dm_st: PathGroupStatusSchema,
  marginal_st: z.string().optional(), group: z.number().int().positive(), paths: z.array(RawPathSchema),
})
const RawMapSchema = z.object({
  name: z.string().min(1), uuid: z.string().min(1), sysfs: z.string(), failback: z.string().optional(),
  queueing: z.string().optional(), paths: z.number().int().optional(), write_prot: z.string().optional(),
  dm_st: z.string().optional(), features: z.string(), hwhandler: z.string().optional(), action: z.string().optional(),
  path_faults: z.number().int().optional(), vend: z.string().optional(), prod: z.string().optional(),
  rev: z.string().optional(), switch_grp: z.number().optional(), map_loads: z.number().optional(),
  total_q_time: z.number().optional(), q_timeouts: z.number().optional(), path_groups: z.array(RawGroupSchema),
})
const RawDocumentSchema = z.object({
  major_version: z.number().int(), minor_version: z.number().int(),
  maps: z.array(RawMapSchema).optional(), map: RawMapSchema.optional(),
})

type RawMap = z.infer<typeof RawMapSchema>

/**
 * Parses multipathd's JSON reply. multipathd prints string values without
 * JSON escaping, so a reply that is not valid JSON is re-read with each
 * `"key" : "value"` line's value re-encoded; the structure is then checked
 * field by field.
 * @throws {MultipathParseError} on truncated or malformed JSON, an unknown
 *   major_version, or a field of the wrong type (the message names the field).
 */
export function parseMultipathJson(stdout: string): MultipathTopology {
  const value = parseTolerantJson(stdout)
  if (typeof value === 'object' && value !== null && !('major_version' in value)) {
    const what = 'path_groups' in value ? 'one map object' : 'group' in value && 'selector' in value ? 'one path group object' : 'dev' in value ? 'one path object' : 'an object without major_version'
    throw new MultipathParseError(`not a multipathd "show maps json" / "show map X json" reply: it is ${what}`)
  }
  const doc = RawDocumentSchema.safeParse(value)
  if (!doc.success) throw new MultipathParseError(`multipathd JSON does not have the expected layout: ${describeIssues(doc.error)}`)
  if (doc.data.major_version !== 0) throw new MultipathParseError(`unsupported multipathd JSON major_version ${doc.data.major_version} (known: 0)`)
  const raw = doc.data.maps ?? (doc.data.map ? [doc.data.map] : undefined)
  if (!raw) throw new MultipathParseError('multipathd JSON has neither "maps" nor "map"')
  return { source: 'json', maps: raw.map(mapFromRaw), skipped: [] }
}

/**
 * Normalizes ONE map object as multipathd prints it inside `maps[]` (useful
 * for fragments and `show map X json` payloads already parsed).
 * @throws {MultipathParseError} naming the field at fault.
 */
export function multipathMapFromJson(value: unknown): MultipathMap {
  const r = RawMapSchema.safeParse(value)
  if (!r.success) throw new MultipathParseError(`multipathd map object is malformed: ${describeIssues(r.error)}`)
  return mapFromRaw(r.data)
}

function mapFromRaw(m: RawMap): MultipathMap {
  const map: MultipathMap = {
    name: m.name, wwid: m.uuid, sysfs: m.sysfs === 'undef' || m.sysfs === '' ? null : m.sysfs,
    features: m.features, queueing: featuresQueue(m.features),
    pathGroups: [...m.path_groups].sort((a, b) => a.group - b.group).map((g): PathGroup => ({
      index: g.group, ...(g.selector !== undefined ? { selector: g.selector } : {}), priority: g.pri ?? null,
      status: g.dm_st, ...(g.marginal_st !== undefined ? { marginal: g.marginal_st === 'marginal' } : {}),
      paths: g.paths.map(pathFromRaw),
    })),
  }
  const optional: Array<[keyof MultipathMap, string | number | undefined]> = [
    ['vendor', m.vend], ['product', m.prod], ['revision', m.rev], ['hwhandler', m.hwhandler], ['writeProtect', m.write_prot],
    ['action', m.action === '' ? undefined : m.action], ['noPathRetry', m.queueing], ['dmState', m.dm_st],
    ['failback', m.failback], ['activePaths', m.paths], ['pathFaults', m.path_faults],
  ]
  for (const [key, v] of optional) if (v !== undefined) (map as Record<string, unknown>)[key] = typeof v === 'string' ? v.trim() : v
  return map
}

function pathFromRaw(p: z.infer<typeof RawPathSchema>): Path {
  const path: Path = { dev: p.dev, dmState: p.dm_st, checkerState: p.chk_st }
  if (p.dev_t !== undefined) path.devT = p.dev_t
  if (p.dev_st !== undefined) path.devState = p.dev_st
  if (p.pri !== undefined) path.priority = p.pri
  if (p.checker !== undefined) path.checker = p.checker
  if (p.marginal_st !== undefined) path.marginal = p.marginal_st === 'marginal'
  // "[undef]" is print.c's placeholder for "not applicable to this transport".
  const ids: Array<[keyof Path, string | undefined]> = [
    ['hostWwnn', p.host_wwnn], ['targetWwnn', p.target_wwnn], ['hostWwpn', p.host_wwpn],
    ['targetWwpn', p.target_wwpn], ['hostAdapter', p.host_adapter], ['lunHex', p.lun_hex],
  ]
  for (const [key, v] of ids) if (v !== undefined && v !== '[undef]') (path as Record<string, unknown>)[key] = v
  return path
}

/** Matches one `"key" : "value"` line as print.c emits it; the value may hold raw quotes or backslashes. */
const STRING_FIELD_LINE_RE = /^(\s*"[A-Za-z_]+"\s*:\s*)"(.*)"(\s*,?\s*)$/gm

/**
 * JSON.parse, and on failure a second try with string values re-encoded line
 * by line. Never evaluates anything; the result is plain data.
 * @throws {MultipathParseError} saying whether the reply was cut short.
 */
export function parseTolerantJson(text: string): unknown {
  if (text.trim() === '') throw new MultipathParseError('multipathd returned no output (expected JSON)')
  let firstError: Error
  try { return JSON.parse(text) } catch (e) { firstError = e as Error }
  try {
    return JSON.parse(text.replace(STRING_FIELD_LINE_RE, (_all, pre: string, value: string, post: string) => `${pre}${JSON.stringify(value)}${post}`))
  } catch { /* report the first error: it points at the original text */ }
  if (isCutShort(text)) {
    throw new MultipathParseError(`multipathd JSON is truncated: it ends inside an unfinished ${openConstruct(text)} after ${text.length} bytes (${firstError.message})`, undefined, { cause: firstError })
  }
  throw new MultipathParseError(`multipathd output is not valid JSON: ${firstError.message}`, undefined, { cause: firstError })
}

/** True when brackets or a string are still open at the end of the text. */
function isCutShort(text: string): boolean {
  return openConstruct(text) !== 'nothing'
}

function openConstruct(text: string): 'string' | 'object or array' | 'nothing' {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      // Unescaped quotes inside values end the string early; the line ending is a better bound.
      if (c === '\\') i++
      else if (c === '"' || c === '\n') inString = false
    } else if (c === '"') inString = true
    else if (c === '{' || c === '[') depth++
    else if (c === '}' || c === ']') depth--
  }
  if (inString) return 'string'
  return depth > 0 ? 'object or array' : 'nothing'
}

function describeIssues(error: z.ZodError): string {
  return error.issues.slice(0, 3).map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ')
}

function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(top level)'
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('')
}
