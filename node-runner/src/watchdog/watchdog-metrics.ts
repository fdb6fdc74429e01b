/**
 * The watchdog's Prometheus metrics (text format 0.0.4). The names are a
 * contract: terraform/alerts/multipath.yaml alerts on exactly these.
 */

interface MapSeries {
  /** In the last topology read: only such maps get stuck gauges. */
  present: boolean
  stuck: boolean
  /** Unix ms when the current stuck episode began. */
  stuckSince?: number
  kicks: number
  kickFailures: number
  hung: boolean
}

export class WatchdogMetrics {
  private readonly maps = new Map<string, MapSeries>()
  /** Maps in the last topology that was read. */
  mapsSeen = 0
  passErrors = 0
  /** Unix ms of the last pass that read the topology. */
  lastSuccessMs: number | undefined

  constructor(private readonly now: () => number = Date.now) {}

  /** Records the stuck state of every map in a topology just read; maps no longer present lose their gauges. */
  observeTopology(stuckByMap: Map<string, boolean>): void {
    this.mapsSeen = stuckByMap.size
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

  countKick(map: string): void { this.series(map).kicks++ }
  countKickFailure(map: string): void { this.series(map).kickFailures++ }
  setHung(map: string, hung: boolean): void { this.series(map).hung = hung }
  countPassError(): void { this.passErrors++ }

  /** Seconds the map has been stuck without a break, 0 when it is not. */
  stuckSeconds(map: string): number {
    const since = this.maps.get(map)?.stuckSince
    return since === undefined ? 0 : Math.max(0, (this.now() - since) / 1000)
  }

  /** Prometheus text format 0.0.4, no timestamps (node_exporter's textfile collector rejects them). */
  render(): string {
    const out: string[] = []
    const all = [...this.maps].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    const present = all.filter(([, s]) => s.present)
    const family = (name: string, type: 'gauge' | 'counter', help: string, samples: string[]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples)
    }
    family('writ_multipath_map_stuck', 'gauge', 'Whether the map has no active path group while a path is usable (1) or not (0).',
      present.map(([m, s]) => `writ_multipath_map_stuck{map="${escapeLabel(m)}"} ${s.stuck ? 1 : 0}`))
    family('writ_multipath_map_stuck_seconds', 'gauge', 'Seconds the map has been stuck without a break; 0 when it is not stuck.',
      present.map(([m]) => `writ_multipath_map_stuck_seconds{map="${escapeLabel(m)}"} ${formatNumber(this.stuckSeconds(m))}`))
    family('writ_multipath_kicks_total', 'counter', 'Kick reads (one 4 KiB O_DIRECT read) started on the map.',
      all.map(([m, s]) => `writ_multipath_kicks_total{map="${escapeLabel(m)}"} ${s.kicks}`))
    family('writ_multipath_kick_failures_total', 'counter', 'Kicks that failed: the read failed or hung, or the map was still stuck after it.',
      all.map(([m, s]) => `writ_multipath_kick_failures_total{map="${escapeLabel(m)}"} ${s.kickFailures}`))
    family('writ_multipath_kick_hung', 'gauge', 'Whether a kick read on the map is still outstanding past its timeout (1) or not (0).',
      all.map(([m, s]) => `writ_multipath_kick_hung{map="${escapeLabel(m)}"} ${s.hung ? 1 : 0}`))
    family('writ_multipath_maps', 'gauge', 'Maps in the last topology read.', [`writ_multipath_maps ${this.mapsSeen}`])
    family('writ_multipath_pass_errors_total', 'counter', 'Passes that could not read or parse the topology.', [`writ_multipath_pass_errors_total ${this.passErrors}`])
    // Absent until the first good pass, so absent() alerts on a watchdog that never read a topology.
    family('writ_multipath_last_success_timestamp_seconds', 'gauge', 'Unix time of the last pass that read the topology.',
      this.lastSuccessMs === undefined ? [] : [`writ_multipath_last_success_timestamp_seconds ${formatNumber(this.lastSuccessMs / 1000)}`])
    return `${out.join('\n')}\n`
  }

  private series(map: string): MapSeries {
    let s = this.maps.get(map)
    if (!s) { s = { present: false, stuck: false, kicks: 0, kickFailures: 0, hung: false }; this.maps.set(map, s) }
    return s
  }
}

/** Label value escaping of the text format: backslash, double quote, line feed. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3)
}
