/**
 * Reads the multipath topology: `multipathd show maps json` where it answers
 * with JSON, else `multipath -ll` text. Each query runs as a bounded child, and
 * a query that hung is not started again until its process has exited.
 */
import { parseMultipathJson } from '../parsers/multipath-json.js'
import { parseMultipathText } from '../parsers/multipath-text.js'
import type { MultipathTopology } from '../parsers/multipath-topology.js'
import { startBoundedChild, type BoundedOutcome } from './bounded-child.js'

/** Where a topology came from. */
export type TopologySource = 'multipathd-json' | 'multipath-ll'

export interface TopologyReading {
  topology: MultipathTopology
  source: TopologySource
  /** Why the preferred source was not used, when it was not. */
  fallbackReason?: string
}

/** Neither source gave a topology; `attempts` says what each one did. */
export class TopologyReadError extends Error {
  readonly attempts: Record<TopologySource, string>
  constructor(attempts: Record<TopologySource, string>) {
    super(`could not read the multipath topology: multipathd: ${attempts['multipathd-json']}; multipath -ll: ${attempts['multipath-ll']}`)
    this.name = 'TopologyReadError'
    this.attempts = attempts
  }
}

export interface TopologyReaderOptions {
  multipathdBin: string
  multipathBin: string
  timeoutMs: number
  signal?: AbortSignal
}

export class TopologyReader {
  private readonly hung = new Map<TopologySource, number | undefined>()

  constructor(private readonly options: TopologyReaderOptions) {}

  /**
   * @throws {TopologyReadError} when neither source produced a topology.
   */
  async read(): Promise<TopologyReading> {
    const json = await this.query('multipathd-json', this.options.multipathdBin, ['show', 'maps', 'json'])
    let jsonProblem: string
    if (typeof json === 'string') jsonProblem = json
    else if (!json.stdout.trimStart().startsWith('{')) jsonProblem = `no JSON in the reply (${firstLine(json.stdout) || 'empty output'})`
    else {
      try { return { topology: parseMultipathJson(json.stdout), source: 'multipathd-json' } } catch (e) { jsonProblem = (e as Error).message }
    }
    const text = await this.query('multipath-ll', this.options.multipathBin, ['-ll'])
    if (typeof text === 'string') throw new TopologyReadError({ 'multipathd-json': jsonProblem, 'multipath-ll': text })
    try {
      return { topology: parseMultipathText(text.stdout), source: 'multipath-ll', fallbackReason: jsonProblem }
    } catch (e) {
      throw new TopologyReadError({ 'multipathd-json': jsonProblem, 'multipath-ll': (e as Error).message })
    }
  }

  /** Runs one query; a string is the reason it gave no usable output. */
  private async query(source: TopologySource, bin: string, args: string[]): Promise<{ stdout: string } | string> {
    if (this.hung.has(source)) return `an earlier ${bin} (pid ${this.hung.get(source) ?? '?'}) is still hung; not starting another`
    const child = startBoundedChild(bin, args, { timeoutMs: this.options.timeoutMs, ...(this.options.signal ? { signal: this.options.signal } : {}) })
    const outcome: BoundedOutcome = await child.outcome
    switch (outcome.kind) {
      case 'spawn_failed':
        return outcome.error.code === 'ENOENT' ? `${bin} not found` : `${bin} could not start: ${outcome.error.message}`
      case 'timed_out':
        this.hung.set(source, outcome.pid)
        void child.exited.then(() => this.hung.delete(source))
        return `${bin} gave no answer within ${this.options.timeoutMs} ms (killed)`
      case 'exited':
        if (outcome.code !== 0) return `${bin} exited ${outcome.code ?? outcome.signal}: ${firstLine(outcome.stderr) || firstLine(outcome.stdout) || 'no output'}`
        return { stdout: outcome.stdout }
    }
  }
}

function firstLine(s: string): string {
  return (s.trim().split('\n')[0] ?? '').slice(0, 200)
}
