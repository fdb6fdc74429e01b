/**
 * Sending a batch of a plan's writs: one reply subscription for the batch,
 * each writ's reply subject naming its position, instead of a request (a
 * reply inbox, a timer and an error object) per target. What the answers
 * settle is returned as outcomes — a refusal, or the server's "no
 * responders" (no runner listening for that node); an accepted writ's
 * outcome comes later as its result, and silence past the ack timeout is
 * left to the result stream and the deadline, as for a run.
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node'
import { CONTROL_PLANE_INBOX_PREFIX, WritAckSchema, planRunId, subjects, type ApprovalRef, type MerkleTree } from '@writ/packs/protocol'
import { randomHex } from '../runs/index.js'
import { groupKey } from './plan-results.js'
import type { Plan, TargetResult } from './plan-schemas.js'
import { planWritJson, type SignedStatement } from './plan-writs.js'

const encoder = new TextEncoder()

export async function sendWrits(
  nc: NatsConnection, plan: Plan, tree: MerkleTree, signed: SignedStatement, approvals: ApprovalRef[], positions: number[], ackTimeoutMs: number,
): Promise<TargetResult[]> {
  const settled: TargetResult[] = []
  const waiting = new Set(positions)
  const inbox = `${CONTROL_PLANE_INBOX_PREFIX}.plan.${plan.id}.${randomHex(4)}`
  let allAnswered: () => void = () => {}
  const answered = new Promise<void>((r) => { allAnswered = r })
  const sub = nc.subscribe(`${inbox}.*`, {
    callback: (err, msg) => {
      if (err) return
      const p = Number(msg.subject.slice(inbox.length + 1))
      if (!waiting.delete(p)) return
      const outcome = answerOf(plan, p, msg)
      if (outcome) settled.push(outcome)
      if (waiting.size === 0) allAnswered()
    },
  })
  for (const p of positions) {
    const t = plan.targets[p]
    if (!t) { waiting.delete(p); continue }
    nc.publish(subjects.run(t.node_id), encoder.encode(planWritJson(plan, tree, signed, p, approvals)), { reply: `${inbox}.${p}` })
  }
  let timer: NodeJS.Timeout | undefined
  if (waiting.size > 0) await Promise.race([answered, new Promise<void>((r) => { timer = setTimeout(r, ackTimeoutMs) })])
  clearTimeout(timer)
  sub.unsubscribe()
  return settled
}

/** What a runner's answer (or the server's "no responders") settles for target `p`, if anything. */
function answerOf(plan: Plan, p: number, msg: Msg): TargetResult | undefined {
  const at = new Date().toISOString()
  if (msg.headers?.hasError && msg.headers.code === 503) {
    const reason = `no runner is listening for node ${plan.targets[p]?.node_name ?? p}`
    return { p, status: 'node_offline', exit_code: null, group: groupKey('node_offline', null, 'offline'), sample: reason, reason, at }
  }
  let json: unknown
  try { json = msg.json() } catch { json = undefined }
  const ack = WritAckSchema.safeParse(json)
  // Accepted, or an answer that is not one: the outcome comes as a result (or the deadline).
  if (!ack.success || ack.data.accepted || ack.data.run_id !== planRunId(plan.id, p)) return undefined
  // The runner already has this writ (a re-send after a takeover): its outcome comes as a result.
  if (ack.data.refusal.code === 'replayed') return undefined
  const reason = `runner refused (${ack.data.refusal.code}): ${ack.data.refusal.message}`
  return { p, status: 'refused_by_runner', exit_code: null, group: groupKey('refused_by_runner', null, `refusal:${ack.data.refusal.code}`), sample: reason, reason, at }
}
