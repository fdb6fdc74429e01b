/**
 * Which `side_effects` lists declare "no side effects", the reading both
 * daemons use for the approver registry's default gate: checked phrase by
 * phrase, over writ's stock packs, and over the public emisar catalog.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { declaresNoSideEffects, loadPacks } from '@writ/packs'
import { REPO_ROOT, STOCK_PACKS } from './helpers/runner-harness.js'

t.test('the declaration is an entry that says "None" or "Read-only", not a narrower claim', async (t) => {
  const none = [['None.'], ['None. A read-only GET against the Nomad API.'], ['One CQL query.', 'Read-only.'], ['Read-only — never writes or mutates data.'],
    ['Read-only, but exposes the container\'s env (may include secrets).'], ['Read-only; no network traffic.'], ['read only'], ['Read-only (a GET).'], ['Read-only - never changes a thing.']]
  for (const list of none) t.ok(declaresNoSideEffects(list), JSON.stringify(list))
  const changes = [[], ['Restarts the service.'], ['None on the device\'s data. Issues read I/O to the device.'], ['Read-only metadata.'], ['No mutation.'],
    ['Nonetheless restarts the service.'], ['Read-only in effect — no task is changed.'], ['Kills every task of the allocation.', 'Noneffective on system jobs.']]
  for (const list of changes) t.notOk(declaresNoSideEffects(list), JSON.stringify(list))
})

t.test('stock packs: every state-changing action is gated by default, and so is the blkid probe, which can leave a blocked reader', async (t) => {
  const gated: string[] = []
  for (const pack of loadPacks([STOCK_PACKS]).packs) {
    for (const a of pack.actions.values()) if (!declaresNoSideEffects(a.spec.side_effects)) gated.push(`${a.id} (${a.spec.risk})`)
  }
  t.same(gated.sort(), ['nomad.alloc_stop (high)', 'nomad.node_drain (high)', 'nomad.node_eligibility (medium)', 'storage.blkid (low)'])
})

t.test('the emisar catalog: no action that says it changes something reads as "None"', { skip: !existsSync(join(REPO_ROOT, '..', 'shared', 'emisar-packs')) && 'no emisar catalog here' }, async (t) => {
  const loaded = loadPacks([join(REPO_ROOT, '..', 'shared', 'emisar-packs')])
  let reads = 0
  let changes = 0
  const suspicious: string[] = []
  for (const pack of loaded.packs) {
    for (const a of pack.actions.values()) {
      if (!declaresNoSideEffects(a.spec.side_effects)) { changes++; continue }
      reads++
      // A "None"/"Read-only" declaration beside an entry that says it changes something would be a misreading.
      if (a.spec.side_effects.some((e) => typeof e === 'string' && /^(Restarts|Deletes|Stops|Kills|Removes|Creates|Changes|Writes|Drops|Flushes|Truncates)\b(?! nothing)/.test(e))) suspicious.push(a.id)
    }
  }
  t.ok(reads > 500 && changes > 300, `${reads} actions declare no side effects, ${changes} change state`)
  t.same(suspicious, [], 'no action declared read-only also says it changes something')
})
