/**
 * Signed cancels for this node's runs: a cancel is honoured only when a
 * trusted key signed it, it names this node, and the run is in flight here.
 * Every cancel gets an answer saying which of those it was.
 */
import type { Msg } from '@nats-io/transport-node'
import type { Logger } from 'pino'
import { SignedCancelSchema, verifySignature, type TrustedKey } from '@writ/packs/protocol'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export interface CancelContext {
  nodeId: string
  trusted: readonly TrustedKey[]
  /** The runs in flight, by run id. */
  runs: ReadonlyMap<string, AbortController>
  log: Logger
}

export function cancelHandler(ctx: CancelContext): (msg: Msg) => void {
  return (msg) => {
    let raw: unknown
    try { raw = JSON.parse(decoder.decode(msg.data)) } catch { raw = undefined }
    const parsed = SignedCancelSchema.safeParse(raw)
    const answer = (ok: boolean, message: string): void => { if (msg.reply) msg.respond(encoder.encode(JSON.stringify({ ok, message }))) }
    if (!parsed.success) return answer(false, 'malformed cancel')
    const sig = verifySignature((raw as { cancel: unknown }).cancel, parsed.data.key_id, parsed.data.sig, [...ctx.trusted])
    if (!sig.ok) return answer(false, sig.message)
    if (parsed.data.cancel.node_id !== ctx.nodeId) return answer(false, 'cancel is for another node')
    const ac = ctx.runs.get(parsed.data.cancel.run_id)
    if (!ac) return answer(false, 'run is not in flight on this node')
    ctx.log.info({ runId: parsed.data.cancel.run_id, by: parsed.data.cancel.by }, 'run canceled')
    ac.abort()
    answer(true, 'canceled')
  }
}
