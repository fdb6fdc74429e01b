/**
 * The multipath watchdog's pass: read the topology, find maps with no active
 * path group but a usable path, kick each with one direct read, and read the
 * topology again to see whether the kick helped. Passes never overlap, and
 * nothing a pass starts can keep the next one from running.
 */
import type { Logger } from 'pino'
import { isMapStuck } from '../parsers/multipath-stuck-maps.js'
import type { MultipathMap, MultipathTopology } from '../parsers/multipath-topology.js'
import { MapKicker, type KickReadResult } from './map-kicker.js'
import { writeMetricsTextfile } from './metrics-textfile.js'
import { TopologyReadError, TopologyReader, type TopologySource } from './topology-reader.js'
import type { WatchdogConfig } from './watchdog-config.js'
import type { WatchdogEventPublisher } from './watchdog-events.js'
import { WatchdogMetrics } from './watchdog-metrics.js'

/** How a kick ended, after the confirming read. */
export type KickOutcome = 'recovered' | 'still_stuck' | 'unconfirmed' | 'read_failed' | 'hung'

/** What one pass saw and did. */
export interface PassReport {
  pass: number
  ok: boolean
  source?: TopologySource
  maps: number
  stuck: string[]
  kicks: Array<{ map: string, outcome: KickOutcome, readMs: number, detail?: string }>
  notKicked: Array<{ map: string, reason: 'in_flight' | 'backoff' }>
  error?: string
  ms: number
}

export interface MultipathWatchdogDeps {
  config: WatchdogConfig
  log: Logger
  events: WatchdogEventPublisher
  now?: () => number
}

export class MultipathWatchdog {
  readonly metrics: WatchdogMetrics
  private readonly reader: TopologyReader
  private readonly kicker: MapKicker
  private readonly config: WatchdogConfig
  private readonly log: Logger
  private readonly events: WatchdogEventPublisher
  private readonly now: () => number
  private readonly stuckNow = new Set<string>()
  private readonly shutdown = new AbortController()
  private readonly startedAt: number
  private lastSource: TopologySource | undefined
  private passNo = 0
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(deps: MultipathWatchdogDeps) {
    this.config = deps.config
    this.log = deps.log
    this.events = deps.events
    this.now = deps.now ?? Date.now
    this.startedAt = this.now()
    this.metrics = new WatchdogMetrics(this.now)
    this.reader = new TopologyReader({ multipathdBin: this.config.multipathdBin, multipathBin: this.config.multipathBin, timeoutMs: this.config.queryTimeoutMs, signal: this.shutdown.signal })
    this.kicker = new MapKicker({
      deviceDir: this.config.deviceDir, ddBin: this.config.ddBin, timeoutMs: this.config.kickTimeoutMs,
      backoffBaseMs: this.config.intervalMs, maxBackoffMs: this.config.maxBackoffMs, now: this.now, signal: this.shutdown.signal,
      onHungReadExited: (map, hungForMs) => {
        this.metrics.setHung(map, false)
        this.log.warn({ map, hungForMs }, 'hung kick read finally exited; the map may be kicked again')
        this.events.publish({ kind: 'multipath_kick_released', severity: 'info', message: `The hung kick read on ${map} exited after ${Math.round(hungForMs / 1000)} s.`, data: { map, hung_for_ms: hungForMs } })
      },
    })
  }

  /** Runs passes every interval until {@link stop}. */
  start(): void {
    const loop = (): void => {
      if (this.stopped) return
      void this.runPass().then(() => { if (!this.stopped) this.timer = setTimeout(loop, this.config.intervalMs) })
    }
    loop()
  }

  /** Stops scheduling passes and cuts a pass in progress short; never waits for hung reads. */
  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.shutdown.abort()
  }

  /** Maps whose kick read is still outstanding past its deadline. */
  hungMaps(): string[] {
    return this.kicker.hungMaps()
  }

  /** null while passes keep reading the topology, else why not (for /healthz). */
  unhealthyReason(): string | null {
    const budget = 3 * this.config.intervalMs + 2 * this.config.queryTimeoutMs + this.config.kickTimeoutMs
    const last = this.metrics.lastSuccessMs
    if (last === undefined) return this.now() - this.startedAt > budget ? 'no pass has read the topology yet' : null
    return this.now() - last > budget ? `last successful pass ${Math.round((this.now() - last) / 1000)} s ago` : null
  }

  /** One pass. Never throws: every failure is logged, counted and reported. */
  async runPass(): Promise<PassReport> {
    const pass = ++this.passNo
    const started = this.now()
    const report: PassReport = { pass, ok: false, maps: 0, stuck: [], kicks: [], notKicked: [], ms: 0 }
    const log = this.log.child({ pass })
    try {
      const reading = await this.reader.read()
      if (reading.source !== this.lastSource) log.info({ source: reading.source, fallbackReason: reading.fallbackReason }, 'reading the topology from this source')
      this.lastSource = reading.source
      report.ok = true
      report.source = reading.source
      report.maps = reading.topology.maps.length
      const stuck = this.observe(reading.topology, new Set(), log)
      report.stuck = stuck.map((m) => m.name)
      const started = this.startKicks(stuck, report, log)
      const completed = await this.collectKicks(started, report, log)
      if (completed.length > 0 && !this.stopped) await this.confirm(completed, report, log)
    } catch (e) {
      this.metrics.countPassError()
      report.error = (e as Error).message
      log.error(e instanceof TopologyReadError ? { attempts: e.attempts } : { err: e }, 'pass failed: topology not read')
    }
    report.ms = this.now() - started
    log.info({ ok: report.ok, source: report.source, maps: report.maps, stuck: report.stuck, kicks: report.kicks, notKicked: report.notKicked, ms: report.ms }, 'pass done')
    await this.exportTextfile(log)
    return report
  }

  /** Updates stuck episodes and gauges; reports maps that left the stuck state on their own. */
  private observe(topology: MultipathTopology, kicked: Set<string>, log: Logger): MultipathMap[] {
    const stuckByMap = new Map<string, boolean>()
    const stuck: MultipathMap[] = []
    for (const map of topology.maps) {
      const isStuck = isMapStuck(map)
      stuckByMap.set(map.name, isStuck)
      if (isStuck) stuck.push(map)
    }
    for (const map of stuck) {
      if (this.stuckNow.has(map.name)) continue
      this.stuckNow.add(map.name)
      const data = describeMap(map)
      log.warn(data, 'map is stuck: no active path group while a path is usable')
      this.events.publish({ kind: 'multipath_stuck', severity: 'warning', message: `Multipath map ${map.name} has no active path group while ${data.usablePaths} path(s) are usable.`, data })
    }
    for (const name of [...this.stuckNow]) {
      if (stuckByMap.get(name) === true) continue
      this.stuckNow.delete(name)
      if (kicked.has(name)) continue
      const gone = !stuckByMap.has(name)
      log.info({ map: name, gone }, gone ? 'stuck map is gone from the topology' : 'map is no longer stuck (without a kick from this pass)')
      this.events.publish({ kind: 'multipath_recovered', severity: 'info', message: gone ? `Multipath map ${name} is no longer in the topology.` : `Multipath map ${name} has an active path group again.`, data: { map: name, gone, by: 'other' } })
    }
    this.metrics.observeTopology(stuckByMap)
    this.kicker.forgetExcept(new Set(stuckByMap.keys()))
    return stuck
  }

  private startKicks(stuck: MultipathMap[], report: PassReport, log: Logger): Array<Promise<{ map: MultipathMap, read: KickReadResult }>> {
    const kicks: Array<Promise<{ map: MultipathMap, read: KickReadResult }>> = []
    for (const map of stuck) {
      const refusal = this.kicker.refusal(map.name)
      if (refusal) {
        report.notKicked.push({ map: map.name, reason: refusal.reason })
        if (refusal.reason === 'in_flight') log.warn({ map: map.name, sinceMs: refusal.sinceMs, pid: refusal.pid }, 'map still stuck but its earlier kick read has not returned; not starting another')
        else log.info({ map: map.name, retryInMs: refusal.untilMs }, 'map still stuck; backing off after failed kicks')
        continue
      }
      this.metrics.countKick(map.name)
      log.warn({ map: map.name, device: `${this.config.deviceDir}/${map.name}`, timeoutMs: this.config.kickTimeoutMs }, 'kicking stuck map with one 4 KiB direct read')
      kicks.push(this.kicker.kick(map.name).then((read) => ({ map, read })))
    }
    return kicks
  }

  /** Waits for the kicks (each bounded by the kick timeout); returns the maps whose read completed. */
  private async collectKicks(kicks: Array<Promise<{ map: MultipathMap, read: KickReadResult }>>, report: PassReport, log: Logger): Promise<Array<{ map: MultipathMap, readMs: number }>> {
    const completed: Array<{ map: MultipathMap, readMs: number }> = []
    for (const { map, read } of await Promise.all(kicks)) {
      if (read.status === 'completed') { completed.push({ map, readMs: read.ms }); continue }
      if (this.stopped) { log.info({ map: map.name }, 'kick read abandoned at shutdown'); continue }
      this.metrics.countKickFailure(map.name)
      this.kicker.settle(map.name, false)
      if (read.status === 'hung') {
        this.metrics.setHung(map.name, true)
        report.kicks.push({ map: map.name, outcome: 'hung', readMs: read.ms })
        log.error({ map: map.name, pid: read.pid, ms: read.ms }, 'kick read gave no answer in time: killed where the kernel allows; no new read on this map until it exits')
        this.events.publish({ kind: 'multipath_kick', severity: 'critical', message: `Kick read on ${map.name} did not return within ${this.config.kickTimeoutMs} ms; the map is queueing I/O.`, data: { map: map.name, outcome: 'hung', read_ms: read.ms, pid: read.pid ?? null } })
      } else {
        report.kicks.push({ map: map.name, outcome: 'read_failed', readMs: read.ms, detail: read.reason })
        log.error({ map: map.name, reason: read.reason, ms: read.ms }, 'kick read failed')
        this.events.publish({ kind: 'multipath_kick', severity: 'warning', message: `Kick read on ${map.name} failed: ${read.reason}`, data: { map: map.name, outcome: 'read_failed', reason: read.reason } })
      }
    }
    return completed
  }

  /** Re-reads the topology and tells, for each map whose read completed, whether the kick helped. */
  private async confirm(completed: Array<{ map: MultipathMap, readMs: number }>, report: PassReport, log: Logger): Promise<void> {
    let after: MultipathTopology
    try {
      after = (await this.reader.read()).topology
    } catch (e) {
      for (const { map, readMs } of completed) report.kicks.push({ map: map.name, outcome: 'unconfirmed', readMs, detail: (e as Error).message })
      log.warn({ err: e, maps: completed.map((c) => c.map.name) }, 'kick reads completed but the topology could not be read again to confirm')
      return
    }
    this.observe(after, new Set(completed.map((c) => c.map.name)), log)
    for (const { map, readMs } of completed) {
      const now = after.maps.find((m) => m.name === map.name)
      const recovered = now !== undefined && !isMapStuck(now)
      const active = now?.pathGroups.find((g) => g.status === 'active')
      this.kicker.settle(map.name, recovered)
      if (recovered) {
        report.kicks.push({ map: map.name, outcome: 'recovered', readMs })
        log.info({ map: map.name, readMs, activeGroup: active?.index ?? null }, 'kick worked: map has an active path group')
        this.events.publish({ kind: 'multipath_kick', severity: 'info', message: `Kicked ${map.name}: path group ${active?.index ?? '?'} is active again.`, data: { map: map.name, outcome: 'recovered', read_ms: readMs, active_group: active?.index ?? null } })
      } else {
        this.metrics.countKickFailure(map.name)
        report.kicks.push({ map: map.name, outcome: 'still_stuck', readMs })
        log.warn({ map: map.name, readMs }, 'kick read completed but the map is still stuck')
        this.events.publish({ kind: 'multipath_kick', severity: 'warning', message: `Kicked ${map.name}, but no path group became active.`, data: { map: map.name, outcome: 'still_stuck', read_ms: readMs } })
      }
    }
  }

  private async exportTextfile(log: Logger): Promise<void> {
    if (this.config.textfileDir === undefined || this.stopped) return
    try { await writeMetricsTextfile(this.config.textfileDir, await this.metrics.render()) } catch (e) {
      log.error({ err: e, dir: this.config.textfileDir }, 'could not write the metrics textfile')
    }
  }
}

function describeMap(map: MultipathMap): { map: string, wwid: string, sysfs: string | null, queueing: boolean, groups: string[], usablePaths: number } {
  const usable = map.pathGroups.flatMap((g) => g.paths).filter((p) => p.checkerState === 'ready' || p.checkerState === 'ghost').length
  return {
    map: map.name, wwid: map.wwid, sysfs: map.sysfs, queueing: map.queueing,
    groups: map.pathGroups.map((g) => `${g.index}:${g.status}:prio=${g.priority ?? '-'}`), usablePaths: usable,
  }
}
