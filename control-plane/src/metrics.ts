/**
 * A small Prometheus text-format registry: counters and gauges with labels.
 * Enough for the handful of series the control plane exports.
 */
type Labels = Record<string, string>

interface Series { help: string, type: 'counter' | 'gauge', values: Map<string, { labels: Labels, value: number }>, collect?: () => number }

export class Metrics {
  private readonly series = new Map<string, Series>()

  counter(name: string, help: string): void { this.series.set(name, { help, type: 'counter', values: new Map() }) }

  gauge(name: string, help: string, collect: () => number): void { this.series.set(name, { help, type: 'gauge', values: new Map(), collect }) }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const s = this.series.get(name)
    if (!s) return
    const key = JSON.stringify(labels)
    const v = s.values.get(key)
    if (v) v.value += by
    else s.values.set(key, { labels, value: by })
  }

  render(): string {
    const out: string[] = []
    for (const [name, s] of this.series) {
      out.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`)
      if (s.collect) out.push(`${name} ${s.collect()}`)
      for (const { labels, value } of s.values.values()) out.push(`${name}${renderLabels(labels)} ${value}`)
    }
    return `${out.join('\n')}\n`
  }
}

function renderLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
  return parts.length ? `{${parts.join(',')}}` : ''
}
