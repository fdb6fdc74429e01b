/**
 * Results waiting to be published: each is written (and fsynced) to a spool
 * folder before the first publish attempt and removed once JetStream has
 * acknowledged it, so a runner restarted mid-publish still delivers.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { RunResultSchema, type RunResult } from '@writ/packs/protocol'

export class ResultSpool {
  constructor(readonly dir: string) { mkdirSync(dir, { recursive: true }) }

  put(result: RunResult): void {
    const tmp = join(this.dir, `.${result.run_id}.tmp`)
    const fd = openSync(tmp, 'w')
    try { writeSync(fd, JSON.stringify(result)); fsyncSync(fd) } finally { closeSync(fd) }
    renameSync(tmp, join(this.dir, `${result.run_id}.json`))
  }

  remove(runId: string): void { rmSync(join(this.dir, `${runId}.json`), { force: true }) }

  /** Every spooled result that still parses; unreadable files are reported, not dropped silently. */
  pending(): { results: RunResult[], unreadable: string[] } {
    const results: RunResult[] = []
    const unreadable: string[] = []
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith('.json')) continue
      try {
        const r = RunResultSchema.safeParse(JSON.parse(readFileSync(join(this.dir, f), 'utf8')))
        if (r.success) results.push(r.data); else unreadable.push(f)
      } catch { unreadable.push(f) }
    }
    return { results, unreadable }
  }
}
