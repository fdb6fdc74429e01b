/**
 * Everything `writ audit verify` proves about a chain, in one pass: the links
 * (every hash, every prev), every checkpoint's signature against the trusted
 * keys, that no event older than a few checkpoint intervals is left without
 * a checkpoint after it, that the stream's last sequence was read (nothing
 * deleted from its tail), and that each request hash a runner journal
 * witnessed is on the chain as that run's `run.requested` event. With a
 * retention limit (`audit_max_age`) the chain is verified from the oldest
 * surviving event, which the oldest surviving checkpoint vouches for.
 */
import type { JournalWitness } from '@writ/packs'
import type { TrustedKey } from '@writ/packs/protocol'
import { CHECKPOINT_TYPE, checkCheckpoint } from './audit-checkpoints.js'
import { verifyChain, type StoredEvent } from './audit-event.js'
import { PlanAccounting } from './plan-accounting.js'

export interface StreamFacts {
  firstSeq: number
  lastSeq: number
  /** The stream's max_age in ms (0: kept forever). */
  maxAgeMs: number
}

export interface AuditVerifyOptions {
  trusted: readonly TrustedKey[]
  /** Known when verifying the stream itself (not an export). */
  stream?: StreamFacts
  witnesses?: readonly JournalWitness[]
  /** Events younger than this may still be waiting for their checkpoint. */
  graceMs: number
  now?: number
}

export interface AuditReport {
  ok: boolean
  /** What is wrong, first problem first; empty when ok. */
  problems: string[]
  /** What was checked and what could not be. */
  notes: string[]
  events: number
  firstSeq: number | null
  lastSeq: number | null
  head: string | null
  /** Checkpoints that verify (`count`) and those that do not (`bad`). */
  checkpoints: { count: number, bad: number, keys: string[], last?: { seq: number, signedAt: string, ageMs: number }, oldestSeq?: number }
  uncovered: { count: number, oldestAt?: string }
  witnesses: { checked: number, onChain: number, beforeRetention: number }
}

export async function verifyAudit(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>, opts: AuditVerifyOptions): Promise<AuditReport> {
  const now = opts.now ?? Date.now()
  const problems: string[] = []
  const notes: string[] = []
  const keys = new Set<string>()
  let count = 0
  let checkpointCount = 0
  let badCheckpoints = 0
  let last: { seq: number, signedAt: string } | undefined
  let oldestCheckpoint: number | undefined
  let uncovered = 0
  let oldestUncoveredAt: string | undefined
  let firstAt: string | undefined
  const witnessed = new Map<string, JournalWitness[]>()
  for (const w of opts.witnesses ?? []) witnessed.set(w.requestHash, [...(witnessed.get(w.requestHash) ?? []), w])
  const onChain = new Set<string>()

  const plans = new PlanAccounting()
  const anchored = opts.stream ? opts.stream.firstSeq <= 1 : undefined
  const verdict = await verifyChain(events, {
    anchored: anchored ?? false,
    onEvent: (e) => {
      count++
      firstAt ??= e.at
      if (e.type === CHECKPOINT_TYPE) {
        const c = checkCheckpoint(e, opts.trusted)
        // The links still hold: go on, so every bad checkpoint and every witness is reported.
        if (!c.ok) { badCheckpoints++; problems.push(`checkpoint at sequence ${e.seq}: ${c.reason}`); return true }
        keys.add(c.data.key_id)
        checkpointCount++
        last = { seq: e.seq, signedAt: c.data.signed_at }
        oldestCheckpoint ??= e.seq
        uncovered = 0
        oldestUncoveredAt = undefined
        return true
      }
      uncovered++
      oldestUncoveredAt ??= e.at
      plans.observe(e)
      if ((e.type === 'run.requested' || e.type === 'plan.requested') && witnessed.has(e.hash)) {
        // A plan's targets witness the plan's request event, each by its own run id.
        for (const w of witnessed.get(e.hash) ?? []) if (w.runId === e.run_id || PlanAccounting.witnesses(e, w.runId)) onChain.add(`${w.source}:${w.line}`)
      }
      return true
    },
  })
  if (!verdict.ok) problems.push(`chain broken at event ${verdict.bad.seq ?? '?'} (position ${verdict.bad.position}): ${verdict.bad.reason}`)
  const firstSeq = verdict.ok ? verdict.firstSeq : null
  const lastSeq = verdict.ok ? verdict.lastSeq : null

  if (verdict.ok) {
    // Where the chain starts.
    if (opts.stream && count === 0 && opts.stream.lastSeq > 0) {
      if (opts.stream.maxAgeMs > 0) notes.push(`all ${opts.stream.lastSeq} event(s) aged out (max_age ${Math.round(opts.stream.maxAgeMs / 1000)} s): nothing is left to verify`)
      else problems.push(`the stream's last sequence is ${opts.stream.lastSeq} but it holds no event: every event was deleted`)
    } else if (opts.stream && opts.stream.firstSeq > 1) {
      if (opts.stream.maxAgeMs === 0) problems.push(`events 1–${opts.stream.firstSeq - 1} are gone and the stream keeps events forever (no max_age): they were removed`)
      else if (oldestCheckpoint === undefined) problems.push(`events before sequence ${opts.stream.firstSeq} aged out and no checkpoint survives to vouch for the rest`)
      else notes.push(`events 1–${opts.stream.firstSeq - 1} aged out (max_age ${Math.round(opts.stream.maxAgeMs / 1000)} s); verified from sequence ${opts.stream.firstSeq}, which the oldest surviving checkpoint (sequence ${oldestCheckpoint}) covers`)
    } else if (!opts.stream && firstSeq !== null && firstSeq > 1) {
      notes.push(`the file starts at sequence ${firstSeq}: the events before it are not in it and cannot be checked`)
    }
    // The end of the stream.
    if (opts.stream && lastSeq !== null && opts.stream.lastSeq > lastSeq) {
      problems.push(`the stream's last sequence is ${opts.stream.lastSeq} but its last event is ${lastSeq}: events ${lastSeq + 1}–${opts.stream.lastSeq} were deleted from its tail`)
    }
    // Checkpoints.
    if (count > 0 && last === undefined && badCheckpoints === 0) {
      const age = firstAt ? now - Date.parse(firstAt) : 0
      if (age > opts.graceMs) problems.push(`no signed checkpoint: nothing anchors these ${count} event(s) (the oldest is ${Math.round(age / 1000)} s old; a control plane checkpoints every few seconds while events flow)`)
      else notes.push(`no checkpoint yet: the ${count} event(s) are younger than ${Math.round(opts.graceMs / 1000)} s`)
    } else if (last !== undefined && uncovered > 0 && oldestUncoveredAt) {
      const age = now - Date.parse(oldestUncoveredAt)
      if (age > opts.graceMs) {
        problems.push(`${uncovered} event(s) after the last checkpoint (sequence ${last?.seq}) are covered by none, the oldest ${Math.round(age / 1000)} s old: the checkpoint that should follow them is missing (the tail was cut and rewritten, or the control plane stopped without its shutdown checkpoint)`)
      } else notes.push(`${uncovered} recent event(s) after the last checkpoint wait for the next one`)
    }
  }

  // Plans: every target's request, dispatch and outcome (or its listing as never dispatched).
  const accounted = plans.report()
  if (verdict.ok) { problems.push(...accounted.problems); notes.push(...accounted.notes) }

  // Witnesses.
  let beforeRetention = 0
  const firstAtMs = firstAt ? Date.parse(firstAt) : Number.POSITIVE_INFINITY
  for (const w of opts.witnesses ?? []) {
    if (onChain.has(`${w.source}:${w.line}`)) continue
    if (Date.parse(w.at) < firstAtMs && (opts.stream?.firstSeq ?? firstSeq ?? 1) > 1) { beforeRetention++; continue }
    if (problems.length < 50) problems.push(`${w.source} line ${w.line} witnessed run ${w.runId} with request hash ${w.requestHash.slice(0, 16)}…, which is not on the chain as its run.requested event (the chain was rewritten or that event removed)`)
  }
  if (beforeRetention > 0) notes.push(`${beforeRetention} witnessed request(s) predate the oldest surviving event and cannot be checked`)

  const lastCheckpoint = last as { seq: number, signedAt: string } | undefined
  return {
    ok: problems.length === 0,
    problems, notes, events: count, firstSeq, lastSeq, head: verdict.ok ? verdict.lastHash : null,
    checkpoints: {
      count: checkpointCount,
      bad: badCheckpoints,
      keys: [...keys],
      ...(lastCheckpoint ? { last: { seq: lastCheckpoint.seq, signedAt: lastCheckpoint.signedAt, ageMs: now - Date.parse(lastCheckpoint.signedAt) } } : {}),
      ...(oldestCheckpoint !== undefined ? { oldestSeq: oldestCheckpoint } : {}),
    },
    uncovered: { count: uncovered, ...(oldestUncoveredAt ? { oldestAt: oldestUncoveredAt } : {}) },
    witnesses: { checked: opts.witnesses?.length ?? 0, onChain: onChain.size, beforeRetention },
  }
}
