/**
 * What the approver weighs beside the run itself: the runs the requester
 * cites, then its earlier runs in the same session (never later ones, which
 * the requester could not have relied on), and any other request that waits
 * for a decision on the same node.
 */
import type { PackCatalog } from '@writ/packs'
import { presentRun, runSummary, type Run, type RunStore } from '../runs/index.js'
import { outputView, type OutputView } from './output-view.js'
import { statusWords } from './status-words.js'

export interface EvidenceItem {
  id: string, summary: string, action: string, status: string, status_class: string, reason: string, at: string, cited: boolean, output: OutputView
}
export interface PendingNeighbour { id: string, summary: string, requester: string, created_at: string }

/** Session runs looked at, at most (the newest first). */
const SESSION_RUNS = 50

/** The cited runs, then the requester's earlier runs in the session, newest first. */
export async function evidenceTrail(run: Run, store: RunStore, catalog: PackCatalog): Promise<EvidenceItem[]> {
  const cited = new Set(run.evidence ?? [])
  const ids = [...cited]
  if (run.session_id) {
    for (const r of store.list({ session_id: run.session_id, requester: run.requester.id }, SESSION_RUNS)) {
      if (r.id !== run.id && !cited.has(r.id) && r.created_at < run.created_at) ids.push(r.id)
    }
  }
  const out: EvidenceItem[] = []
  for (const id of ids) {
    const hit = await store.get(id)
    if (!hit) continue
    const r = presentRun(hit.run, catalog)
    const action = catalog.lookup(r.action)
    const words = statusWords(r.status)
    out.push({
      id: r.id, summary: runSummary(r, catalog), action: r.action, status: words.label, status_class: words.tone, reason: r.reason,
      at: r.finished_at ?? r.created_at, cited: cited.has(r.id), output: outputView(r, action.ok ? action.action.spec.output.parser : undefined, 'evidence'),
    })
  }
  return out
}

/** Other runs waiting for a decision on the same node: an approver should know two changes are asked for at once. */
export async function pendingOnSameNode(run: Run, store: RunStore, catalog: PackCatalog): Promise<PendingNeighbour[]> {
  const others = store.list({ status: 'pending_approval', node: run.node_id }, 6).filter((r) => r.id !== run.id).slice(0, 5)
  const out: PendingNeighbour[] = []
  for (const s of others) {
    const full = (await store.current(s.id))?.run
    if (full) out.push({ id: s.id, summary: runSummary(full, catalog), requester: s.requester.id, created_at: s.created_at })
  }
  return out
}
