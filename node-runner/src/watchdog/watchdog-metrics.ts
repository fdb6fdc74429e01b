/**
 * The watchdog's Prometheus metrics (prom-client; text format without
 * timestamps, as node_exporter's textfile collector needs). The names are a
 * contract: terraform/alerts/multipath.yaml alerts on exactly these.
 */
import { Counter, Gauge, Registry } from 'prom-client'

interface MapSeries {
  /** In the last topology read: only such maps get stuck gauges. */
  present: boolean
  stuck: boolean
  /** Unix ms when the current stuck episode began. */
  stuckSince?: number
  hung: boolean
}

export class WatchdogMetrics {
  private readonly maps = new Map<string, MapSeries>()
  /** Maps in the last topology that was read. */
  mapsSeen = 0
  /** Unix ms of the last pass that read the topology. */
  lastSuccessMs: number | undefined
  readonly registry = new Registry()
  private readonly kicks = new Counter({ name: 'writ_multipath_kicks_total', help: 'Kick reads (one 4 KiB O_DIRECT read) started on the map.', labelNames: ['map'], registers: [this.registry] })
  private readonly kickFailures = new Counter({ name: 'writ_multipath_kick_failures_total', help: 'Kicks that failed: the read failed or hung, or the map was still stuck after it.', labelNames: ['map'], registers: [this.registry] })
  private readonly passErrorCount = new Counter({ name: 'writ_multipath_pass_errors_total', help: 'Passes that could not read or parse the topology.', registers: [this.registry] })
  /** Registered on the first good pass only: absent until then, so absent() alerts fire on a watchdog that never read a topology. */
  private readonly lastSuccess: Gauge

  constructor(private readonly now: () => number = Date.now) {
    const self = this
    const perMap = (name: string, help: string, value: (map: string, s: MapSeries) => number, onlyPresent: boolean): Gauge =>
      new Gauge({
        name, help, labelNames: ['map'], registers: [this.registry],
        collect() {
          this.reset()
          for (const [map, s] of [...self.maps].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) if (!onlyPresent || s.present) this.set({ map }, value(map, s))
        },
      })
    perMap('writ_multipath_map_stuck', 'Whether the map has no active path group while a path is usable (1) or not (0).', (_m, s) => (s.stuck ? 1 : 0), true)
    perMap('writ_multipath_map_stuck_seconds', 'Seconds the map has been stuck without a break; 0 when it is not stuck.', (m) => round(this.stuckSeconds(m)), true)
    perMap('writ_multipath_kick_hung', 'Whether a kick read on the map is still outstanding past its timeout (1) or not (0).', (_m, s) => (s.hung ? 1 : 0), false)
    new Gauge({ name: 'writ_multipath_maps', help: 'Maps in the last topology read.', registers: [this.registry], collect() { this.set(self.mapsSeen) } })
    this.lastSuccess = new Gauge({
      name: 'writ_multipath_last_success_timestamp_seconds', help: 'Unix time of the last pass that read the topology.', registers: [],
      collect() { if (self.lastSuccessMs !== undefined) this.set(round(self.lastSuccessMs / 1000)) },
    })
  }

  /** Records the stuck state of every map in a topology just read; maps no longer present lose their gauges. */
  observeTopology(stuckByMap: Map<string, boolean>): void {
    this.mapsSeen = stuckByMap.size
    if (this.lastSuccessMs === undefined) this.registry.registerMetric(this.lastSuccess)
    this.lastSuccessMs = this.now()
    for (const [map, stuck] of stuckByMap) {
      const s = this.series(map)
      if (stuck && !s.stuck) s.stuckSince = this.now()
      if (!stuck) delete s.stuckSince
      s.stuck = stuck
      s.present = true
    }
    for (const [map, s] of this.maps) {
      // Counters stay for the life of the process so rate() keeps working; only the gauges go.
      if (!stuckByMap.has(map)) { s.present = false; s.stuck = false; delete s.stuckSince }
    }
  }

  countKick(map: string): void { this.series(map); this.kicks.inc({ map }) }
  countKickFailure(map: string): void { this.series(map); this.kickFailures.inc({ map }) }
  setHung(map: string, hung: boolean): void { this.series(map).hung = hung }
  countPassError(): void { this.passErrorCount.inc() }

  /** Seconds the map has been stuck without a break, 0 when it is not. */
  stuckSeconds(map: string): number {
    const since = this.maps.get(map)?.stuckSince
    return since === undefined ? 0 : Math.max(0, (this.now() - since) / 1000)
  }

  /** Prometheus text format, no timestamps (node_exporter's textfile collector rejects them). */
  render(): Promise<string> { return this.registry.metrics() }

  private series(map: string): MapSeries {
    let s = this.maps.get(map)
    if (!s) {
      s = { present: false, stuck: false, hung: false }
      this.maps.set(map, s)
      // Every map seen gets its counters at 0 from the start, so increase() sees the first kick.
      this.kicks.inc({ map }, 0)
      this.kickFailures.inc({ map }, 0)
    }
    return s
  }
}

function round(n: number): number { return Math.round(n * 1000) / 1000 }
