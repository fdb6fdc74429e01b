/**
 * Output parsers named by a pack action's `output.parser`, and the multipath
 * topology model they share with the watchdog.
 */
import { parseDmesg } from './dmesg.js'
import { parseJsonOutput } from './json.js'
import { parseLines } from './lines.js'
import { parseMultipathJson } from './multipath-json.js'
import { parseMultipathText } from './multipath-text.js'
import type { MultipathTopology } from './multipath-topology.js'

export {
  MultipathTopologySchema, MultipathMapSchema, PathGroupSchema, PathSchema, PathDmStateSchema, PathGroupStatusSchema,
  CheckerStateSchema, KNOWN_CHECKER_STATES, MultipathParseError, featuresQueue,
} from './multipath-topology.js'
export type { MultipathTopology, MultipathMap, PathGroup, Path } from './multipath-topology.js'
export { isMapStuck, stuckMaps } from './multipath-stuck-maps.js'
export { parseMultipathText } from './multipath-text.js'
export { parseMultipathJson, multipathMapFromJson, parseTolerantJson } from './multipath-json.js'
export { parseMultipathdTable } from './multipathd-table.js'
export type { MultipathdTable } from './multipathd-table.js'
export { writeMultipathdMapsJson, writeMultipathdMapJson } from './multipathd-json-writer.js'
export { parseDmesg, parseDmesgLine, subsystemOf, LOG_LEVELS, LOG_FACILITIES } from './dmesg.js'
export type { DmesgEntry, LogLevel } from './dmesg.js'
export { parseLines } from './lines.js'
export { parseJsonOutput, JsonOutputError } from './json.js'

/** Parser names a pack action can declare. */
export type OutputParserName = 'text' | 'lines' | 'json' | 'multipath' | 'dmesg' | 'raw'

/** What a parser made of an action's stdout: `parsed`, or an `error` saying why not; neither for text/raw. */
export interface ParsedOutput {
  parsed?: unknown
  error?: string
}

// Config warnings multipath prints before the topology ("4735.224337 | /etc/multipath.conf line 31, …").
const LEADING_LOG_LINES_RE = /^(?:\s*\d+\.\d+ \| [^\n]*\n)*\s*/

/**
 * multipathd JSON when the output (after any leading config warnings) starts
 * with `{`, else multipath topology text.
 * @throws {MultipathParseError}
 */
export function parseMultipathOutput(stdout: string): MultipathTopology {
  const start = LEADING_LOG_LINES_RE.exec(stdout)?.[0].length ?? 0
  return stdout[start] === '{' ? parseMultipathJson(stdout.slice(start)) : parseMultipathText(stdout)
}

/**
 * Runs the named parser over an action's stdout. Never throws: a parser's
 * complaint comes back as `error`. `text` and `raw` parse nothing.
 */
export function parseOutput(parser: OutputParserName, stdout: string): ParsedOutput {
  try {
    switch (parser) {
      case 'text':
      case 'raw':
        return {}
      case 'lines':
        return { parsed: parseLines(stdout) }
      case 'json':
        return { parsed: parseJsonOutput(stdout) }
      case 'multipath':
        return { parsed: parseMultipathOutput(stdout) }
      case 'dmesg':
        return { parsed: parseDmesg(stdout) }
      default:
        return { error: `unknown parser "${String(parser)}"` }
    }
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) }
  }
}
