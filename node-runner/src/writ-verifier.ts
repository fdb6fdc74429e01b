/**
 * Decides whether a signed writ may run on this node. Every check is here, in
 * the order a forged or stale writ is cheapest to turn away; each refusal
 * carries a typed code and a message an operator can act on.
 */
import type { Invocation, LoadedAction, LoadedPack, PackCatalog, RunnerDirs } from '@writ/packs'
import { prepareInvocation, resolveListRoot } from '@writ/packs'
import {
  STATEFUL_ACTIONS, SignedWritSchema, WRIT_VERSION, approvalBinding, checkGrant, checkPlanWrit, verifySignature, type Refusal, type SignedWrit, type TrustedKey, type Writ,
} from '@writ/packs/protocol'
import { nodeLocalityRefusal } from './nomad-locality.js'

export type Verdict =
  | {
    ok: true, writ: Writ, pack: LoadedPack, action: LoadedAction, invocation: Invocation,
    /** What its approvals (and their passkeys) must be bound to: the run's binding, or its plan's. */
    binding: string,
    /** The plan and position, for a plan's target. */
    plan?: { id: string, position: number },
  }
  | { ok: false, refusal: Refusal, runId: string, /** set once the signature verified */ writ?: Writ }

export interface VerifierDeps {
  nodeId: string
  trusted: readonly TrustedKey[]
  /** The catalog as on disk now; `packId` narrows the freshness check to one pack. */
  catalog: (packId?: string) => PackCatalog
  seen: (runId: string) => boolean
  allowShellPacks: boolean
  clockSkewMs: number
  /** A writ valid for longer is refused (the journal remembers run ids only that long). */
  maxWritLifetimeMs: number
  /** This host's directories that list roots may name (`{{ runner.nomad_data_dir }}`). */
  runnerDirs?: RunnerDirs
  /** How many writs under a standing grant this runner has accepted (its journal counts them). */
  grantUses?: (grantId: string) => number
  now?: () => number
}

/** The run id a message claims, for answering and journaling it even when it is not a valid writ. */
export function claimedRunId(raw: unknown): string {
  const id = (raw as { writ?: { run_id?: unknown } } | null)?.writ?.run_id
  return typeof id === 'string' ? id.slice(0, 64) : ''
}

/**
 * A writ of another format version is refused before anything else: its
 * approvals are bound in a way this runner does not compute, and checking
 * them anyway would refuse good approvals or, worse, accept bad ones.
 */
function versionRefusal(raw: unknown): Verdict | undefined {
  const v = (raw as { writ?: { v?: unknown } } | null)?.writ?.v
  if (typeof v !== 'number' || v === WRIT_VERSION) return undefined
  const upgrade = v < WRIT_VERSION ? 'the control plane is older than this runner' : 'this runner is older than the control plane'
  const message = `writ format version ${v}, this runner verifies version ${WRIT_VERSION} only (${upgrade}): control plane and runners are upgraded together`
  return { ok: false, runId: claimedRunId(raw), refusal: { code: 'malformed', message } }
}

export function verifyWrit(raw: unknown, deps: VerifierDeps): Verdict {
  const wrongVersion = versionRefusal(raw)
  if (wrongVersion) return wrongVersion
  const parsed = SignedWritSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return { ok: false, runId: claimedRunId(raw), refusal: { code: 'malformed', message: `writ does not match the protocol at "${issue?.path.join('.') ?? ''}": ${issue?.message ?? 'invalid'}` } }
  }
  const signed: SignedWrit = parsed.data
  const writ = signed.writ
  // A signature covers what was sent exactly; zod defaults must not change what is verified.
  const vouched = vouch(signed, raw, deps.trusted)
  if (!vouched.ok) return { ok: false, runId: writ.run_id, ...(vouched.verified ? { writ } : {}), refusal: { code: vouched.code, message: vouched.message } }
  const refuse = (code: Refusal['code'], message: string): Verdict => ({ ok: false, runId: writ.run_id, writ, refusal: { code, message } })

  if (writ.node_id !== deps.nodeId) return refuse('wrong_node', `writ is for node ${writ.node_id}, this is ${deps.nodeId}`)
  const now = (deps.now ?? Date.now)()
  const expires = Date.parse(writ.expires_at)
  const issued = Date.parse(writ.issued_at)
  if (now > expires + deps.clockSkewMs) return refuse('expired', `writ expired at ${writ.expires_at}`)
  if (issued > now + deps.clockSkewMs) return refuse('not_yet_valid', `writ issued in the future (${writ.issued_at})`)
  if (expires - issued > deps.maxWritLifetimeMs) return refuse('lifetime_too_long', `writ is valid for ${Math.round((expires - issued) / 1000)} s; this runner accepts at most ${Math.round(deps.maxWritLifetimeMs / 1000)} s`)
  if (deps.seen(writ.run_id)) return refuse('replayed', `run ${writ.run_id} was already received by this runner; a writ never runs twice`)
  const approvalProblem = checkApprovals(writ, vouched.binding)
  if (approvalProblem) return refuse(approvalProblem.code, approvalProblem.message)
  if (writ.grant) {
    // A grant stands in for approvals: a writ carrying both is not something the control plane sends.
    if (writ.approvals.length > 0) return refuse('bad_grant', `writ carries grant ${writ.grant.statement.id} and approvals; a run is covered by one or the other`)
    const sentGrant = (raw as { writ: { grant?: { statement?: unknown } } }).writ.grant?.statement
    const grant = checkGrant(writ, writ.grant, sentGrant, { nodeId: deps.nodeId, trusted: deps.trusted, now, clockSkewMs: deps.clockSkewMs, usesAccepted: deps.grantUses ?? (() => 0) })
    if (!grant.ok) return refuse(grant.code, grant.message)
  }
  const stateProblem = checkApprovedState(writ)
  if (stateProblem) return refuse('bad_approval', stateProblem)

  const found = deps.catalog(writ.pack).lookup(writ.action, writ.pack_digest)
  if (!found.ok) return refuse(found.code, found.message)
  if (found.pack.id !== writ.pack) return refuse('unknown_action', `action ${writ.action} belongs to pack ${found.pack.id}, not ${writ.pack}`)
  if (found.action.usesShell && !deps.allowShellPacks) {
    return refuse('shell_not_allowed', `action ${writ.action} is a shell action (${found.action.shellReasons.join('; ')}); this runner only runs shell-free actions (allowShellPacks is off)`)
  }
  const prepared = prepareInvocation(found.action.spec, writ.args, found.pack.dir)
  if (!prepared.ok) return refuse('bad_args', prepared.errors.map((e) => e.message).join('; '))
  const notLocal = nodeLocalityRefusal(prepared.invocation, deps.nodeId)
  if (notLocal) return refuse(notLocal.code, notLocal.message)
  let invocation = prepared.invocation
  if (invocation.kind === 'list') {
    const root = resolveListRoot(invocation.root, deps.runnerDirs ?? {})
    if (!root.ok) return refuse('target_unavailable', root.message)
    invocation = { ...invocation, root: root.root }
  }
  const plan = signed.plan ? { id: signed.plan.statement.plan_id, position: signed.plan.position } : undefined
  return { ok: true, writ, pack: found.pack, action: found.action, invocation, binding: vouched.binding, ...(plan ? { plan } : {}) }
}

type Vouch = { ok: true, binding: string } | { ok: false, code: Refusal['code'], message: string, /** the dispatch key's signature held */ verified: boolean }

/**
 * Who vouches for the writ: its own signature, or its plan's signed
 * statement with the leaf's inclusion proof (plan-root.ts). A plan writ whose
 * statement verifies but which is not in the plan is refused on the record
 * (`not_in_plan`, `bad_plan`): the dispatch key signed something this runner
 * will not run, which someone must look at.
 */
function vouch(signed: SignedWrit, raw: unknown, trusted: readonly TrustedKey[]): Vouch {
  const sent = raw as { writ: unknown, plan?: { statement?: unknown } }
  if (signed.plan) {
    const check = checkPlanWrit(signed.writ, signed.plan, signed.key_id, sent.plan?.statement, trusted)
    if (check.ok) return { ok: true, binding: check.binding }
    return { ok: false, code: check.code, message: check.message, verified: check.code === 'not_in_plan' || check.code === 'bad_plan' }
  }
  const sig = verifySignature(sent.writ, signed.key_id, signed.sig as string, trusted)
  if (!sig.ok) return { ok: false, code: sig.code, message: sig.message, verified: false }
  return { ok: true, binding: approvalBinding(signed.writ) }
}

/** A writ's approved state must be the very object its action changes (nomad-state.ts). */
function checkApprovedState(writ: Writ): string | undefined {
  if (!writ.state) return undefined
  const stateful = STATEFUL_ACTIONS[writ.action]
  if (!stateful || stateful.kind !== writ.state.kind || writ.args[stateful.arg] !== writ.state.id) {
    return `the writ's approved state (${writ.state.kind} ${writ.state.id}) is not what ${writ.action} changes`
  }
  return undefined
}

/**
 * Every approval a writ carries must be bound to exactly this writ (the
 * binding digest recomputed from its own fields), given by someone other than
 * the requester, and counted once per approver.
 */
function checkApprovals(writ: Writ, binding: string): { code: 'bad_approval' | 'self_approval', message: string } | undefined {
  if (writ.approvals.length === 0) return undefined
  if (writ.approvals.some((a) => a.break_glass) && writ.approvals.length !== 1) {
    return { code: 'bad_approval', message: `a break-glass approval stands alone, and this writ carries ${writ.approvals.length} approvals` }
  }
  const by = new Set<string>()
  for (const a of writ.approvals) {
    if (a.binding !== binding) return { code: 'bad_approval', message: `the approval by ${a.by} is bound to ${a.binding.slice(0, 12)}…, not to this writ (${binding.slice(0, 12)}…)` }
    if (a.by === writ.requester.id) return { code: 'self_approval', message: `the approval by ${a.by} was given by the requester of the run; nobody approves their own run` }
    if (by.has(a.by)) return { code: 'bad_approval', message: `${a.by} is counted twice among the approvals` }
    by.add(a.by)
  }
  return undefined
}
