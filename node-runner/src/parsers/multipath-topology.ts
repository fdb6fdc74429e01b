/**
 * One normalized model for a dm-multipath topology, whatever printed it:
 * `multipath -ll` / `-l` / `multipathd show maps topology` text (modern tree
 * or 0.4.x bracket layout) or `multipathd show maps json`.
 */
import { z } from 'zod'

/** Kernel dm state of a path (print.c `%t` for paths). */
export const PathDmStateSchema = z.enum(['active', 'failed', 'undef'])

/** Checker states multipath-tools prints (print.c `%T`); unknown future states are kept verbatim. */
export const KNOWN_CHECKER_STATES = [
  'ready', 'faulty', 'shaky', 'ghost', 'i/o pending', 'i/o timeout', 'delayed', 'disconnected', 'undef',
] as const
export const CheckerStateSchema = z.union([z.enum(KNOWN_CHECKER_STATES), z.string().regex(/^[a-z][a-z/ -]{0,31}$/)])

/** Path group status from the kernel (`A` active, `E` enabled, `D` disabled) or `undef` when not known. */
export const PathGroupStatusSchema = z.enum(['active', 'enabled', 'disabled', 'undef'])

export const PathSchema = z.object({
  /** SCSI host:channel:target:lun, absent where the source does not print it (JSON). */
  hcil: z.string().optional(),
  dev: z.string().min(1),
  /** major:minor */
  devT: z.string().optional(),
  dmState: PathDmStateSchema,
  checkerState: CheckerStateSchema,
  /** sysfs device state: running, offline, blocked, transport-offline, unknown … */
  devState: z.string().optional(),
  priority: z.number().int().nullable().optional(),
  checker: z.string().optional(),
  marginal: z.boolean().optional(),
  hostAdapter: z.string().optional(),
  targetWwnn: z.string().optional(),
  targetWwpn: z.string().optional(),
  hostWwnn: z.string().optional(),
  hostWwpn: z.string().optional(),
  lunHex: z.string().optional(),
})
export type Path = z.infer<typeof PathSchema>

export const PathGroupSchema = z.object({
  /** 1-based, in the order multipath prints the groups (the kernel's group number). */
  index: z.number().int().positive(),
  selector: z.string().optional(),
  /** null when the source prints no priority (oldest bracket format). */
  priority: z.number().int().nullable(),
  status: PathGroupStatusSchema,
  marginal: z.boolean().optional(),
  paths: z.array(PathSchema),
})
export type PathGroup = z.infer<typeof PathGroupSchema>

export const MultipathMapSchema = z.object({
  name: z.string().min(1),
  /** Equals `name` when the map has no alias (user_friendly_names off). */
  wwid: z.string().min(1),
  /** `dm-N`, or null when not created yet (`undef`) or not printed (old format). */
  sysfs: z.string().nullable(),
  vendor: z.string().optional(),
  product: z.string().optional(),
  revision: z.string().optional(),
  size: z.string().optional(),
  /** dm table features, e.g. `1 queue_if_no_path`; `0` for none. */
  features: z.string(),
  hwhandler: z.string().optional(),
  /** `rw`, `ro` or `undef`. */
  writeProtect: z.string().optional(),
  /** Pending action printed before the name (`create`, `reload`, `switchpg` …). */
  action: z.string().optional(),
  /** True when the table queues I/O with no usable path (features hold `queue_if_no_path`). */
  queueing: z.boolean(),
  /** multipathd's no_path_retry view (`on`, `off`, `-`, `N sec`, `N chk`); JSON only. */
  noPathRetry: z.string().optional(),
  dmState: z.string().optional(),
  failback: z.string().optional(),
  /** multipathd's count of ACTIVE paths (JSON `paths`), not the total. */
  activePaths: z.number().int().optional(),
  pathFaults: z.number().int().optional(),
  pathGroups: z.array(PathGroupSchema),
})
export type MultipathMap = z.infer<typeof MultipathMapSchema>

export const MultipathTopologySchema = z.object({
  /** Which printer produced it. */
  source: z.enum(['text', 'text-bracket', 'json']),
  maps: z.array(MultipathMapSchema),
  /** Lines that were not part of any map (config warnings, messages), verbatim. */
  skipped: z.array(z.string()),
})
export type MultipathTopology = z.infer<typeof MultipathTopologySchema>

/** Thrown (or returned as `error` by parseOutput) when input is not a multipath topology. */
export class MultipathParseError extends Error {
  /** 1-based line of the input at fault, when one line is. */
  readonly line: number | undefined
  constructor(message: string, line?: number, options?: ErrorOptions) {
    super(line === undefined ? message : `line ${line}: ${message}`, options)
    this.name = 'MultipathParseError'
    this.line = line
  }
}

/** Whether the table features make the map queue I/O when no path is usable. */
export function featuresQueue(features: string): boolean {
  return /(^|\s)queue_if_no_path(\s|$)/.test(features)
}
