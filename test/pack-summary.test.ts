/**
 * The pack format's words for approvers: an action's `summary` (the concrete
 * change in one line, over the run's arguments) and side effects that apply
 * only `when` the arguments say so. Checked on the stock actions an approver
 * decides, on the fallback for actions without a summary, and on what the
 * loader refuses (every refusal names file and field).
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { applicableSideEffects, declaresNoSideEffects, describeSideEffects, loadPacks, renderSummary, validateArgs, type LoadedAction } from '@writ/packs'
import { STOCK_PACKS } from './helpers/runner-harness.js'

const stock = new Map<string, LoadedAction>()
for (const p of loadPacks([STOCK_PACKS]).packs) for (const a of p.actions.values()) stock.set(a.id, a)
const action = (id: string): LoadedAction => stock.get(id) as LoadedAction
/** The arguments as a run records them: validated, defaults filled in. */
function runArgs(id: string, input: Record<string, unknown>): Record<string, unknown> {
  const r = validateArgs(action(id).spec.args, input)
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '))
  return r.args
}
const NODE_ID = 'fb2170a8-257d-3c64-b14d-bc06cc94e34c'
const ALLOC = 'a8198d79-9fc0-c0dd-6131-cbee77f57577'

t.test('two eligibility runs read differently: the summary says which way the node goes', async (t) => {
  const spec = action('nomad.node_eligibility').spec
  t.equal(renderSummary(spec, { node: 'nomad-client-3', args: runArgs(spec.id, { node_id: NODE_ID, eligibility: 'ineligible' }) }), 'Mark nomad-client-3 INELIGIBLE')
  t.equal(renderSummary(spec, { node: 'nomad-client-3', args: runArgs(spec.id, { node_id: NODE_ID, eligibility: 'eligible' }) }), 'Mark nomad-client-3 ELIGIBLE')
  const off = applicableSideEffects(spec.side_effects, runArgs(spec.id, { node_id: NODE_ID, eligibility: 'ineligible' }))
  t.ok(off.some((e) => /Nothing new is placed on the node/.test(e)), 'ineligible: nothing new is placed')
  t.notOk(off.some((e) => /move back onto it/.test(e)), 'ineligible: nothing about moving back')
})

t.test('a drain says its deadline and what becomes of system jobs', async (t) => {
  const spec = action('nomad.node_drain').spec
  const stay = runArgs(spec.id, { node_id: NODE_ID, ignore_system_jobs: true })
  const stop = runArgs(spec.id, { node_id: NODE_ID, deadline: '30m' })
  t.equal(renderSummary(spec, { node: 'nomad-client-3', args: stay }), 'Drain nomad-client-3, deadline 1h, system jobs stay')
  t.equal(renderSummary(spec, { node: 'nomad-client-3', args: stop }), 'Drain nomad-client-3, deadline 30m, system jobs stop too')
  t.notOk(applicableSideEffects(spec.side_effects, stay).some((e) => /system-job allocations/.test(e)), 'system jobs stay: their stop is not listed')
  t.ok(applicableSideEffects(spec.side_effects, stop).some((e) => /system-job allocations/.test(e)), 'system jobs stop: it is listed')
})

t.test('an allocation stop names the allocation, with its name where the control plane knows it, and "kills at once" only with no_shutdown_delay', async (t) => {
  const spec = action('nomad.alloc_stop').spec
  const plain = runArgs(spec.id, { alloc_id: ALLOC })
  const now = runArgs(spec.id, { alloc_id: ALLOC, no_shutdown_delay: true })
  t.equal(renderSummary(spec, { node: 'nomad-client-3', args: plain }), 'Stop allocation a8198d79 on nomad-client-3')
  t.equal(renderSummary(spec, { node: 'nomad-client-3', args: plain, labels: { alloc_id: 'victoria-metrics.storage[0]' } }), 'Stop allocation a8198d79 (victoria-metrics.storage[0]) on nomad-client-3')
  t.equal(renderSummary(spec, { node: 'nomad-client-3', args: now }), 'Stop allocation a8198d79 on nomad-client-3, at once (no shutdown delay)')
  t.notOk(applicableSideEffects(spec.side_effects, plain).some((e) => /kills at once/.test(e)))
  t.ok(applicableSideEffects(spec.side_effects, now).some((e) => /kills at once/.test(e)))
  t.ok(describeSideEffects(spec.side_effects).some((e) => /kills at once\. \(only when no_shutdown_delay is true\)$/.test(e)), 'a catalog, which knows no run, says when the effect applies')
})

t.test('without a summary: the title, the node and the arguments, sensitive ones as the caller passes them (redacted)', async (t) => {
  const spec = { id: 'x.login', title: 'Log in to a service', summary: undefined }
  t.equal(renderSummary(spec, { node: 'web-1', args: { user: 'ann', password: '[redacted]' } }), 'Log in to a service on web-1 (user=ann, password=[redacted])')
  t.equal(renderSummary(spec, { node: 'web-1', args: {} }), 'Log in to a service on web-1')
  t.equal(renderSummary({ id: 'x.y', title: 'T', summary: 'Set {{ args.v }}' }, { node: 'n', args: { v: 'a\n\tb'.padEnd(400, 'c') } }).length <= 240, true, 'one bounded line, whatever a value holds')
})

t.test('a conditional effect is never a "None" declaration (the default passkey gate errs toward asking)', async (t) => {
  t.ok(declaresNoSideEffects(['None.']))
  t.notOk(declaresNoSideEffects(['None.', { effect: 'Restarts the service.', when: { restart: true } }]))
})

t.test('the loader refuses summaries and conditions it cannot show honestly, naming file and field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-summary-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'p', 'actions'), { recursive: true })
  writeFileSync(join(dir, 'p', 'pack.yaml'), 'schema_version: 1\nid: p\nname: P\nversion: 1.0.0\nactions: [actions/a.yaml]\n')
  const write = (extra: string): ReturnType<typeof loadPacks> => {
    writeFileSync(join(dir, 'p', 'actions', 'a.yaml'), `schema_version: 1
id: p.a
title: A
kind: exec
risk: high
args:
  - { name: user, type: string, required: true }
  - { name: pin, type: string, required: true, sensitive: true }
  - { name: force, type: boolean }
execution: { command: { binary: /bin/true, argv: [] }, timeout: 5s }
${extra}`)
    return loadPacks([dir])
  }
  const ok = write('summary:\n  - "Log {{ args.user | upper }} in on {{ node }}"\n  - text: " (forced)"\n    when: { force: true }\nside_effects:\n  - effect: Ends other sessions.\n    when: { force: true }\n')
  t.same(ok.errors, [], 'a summary over declared arguments and a condition load')
  const digest = ok.packs[0]?.digest
  t.not(write('summary: "Log {{ args.user }} in on {{ node }}"\n').packs[0]?.digest, digest, 'the summary is part of the pack digest, which both daemons compare')

  const cases: Array<[string, RegExp]> = [
    ['summary: "Unlock with {{ args.pin }}"\n', /^summary: template names sensitive argument "pin"/],
    ['summary: "For {{ args.nobody }}"\n', /^summary: template names undeclared argument "nobody"/],
    ['summary: "For {{ args.user | shout }}"\n', /^summary: unknown summary filter "shout"/],
    ['summary: "For {{ env.HOME }}"\n', /^summary: template "\{\{ env\.HOME \}\}" is not/],
    ['summary:\n  - "x"\n  - text: " y"\n    when: { pin: "1234" }\n', /^summary\.1\.when\.pin: condition names sensitive argument "pin"/],
    ['side_effects:\n  - effect: Ends sessions.\n    when: { nobody: true }\n', /^side_effects\.0\.when\.nobody: condition names undeclared argument "nobody"/],
    ['side_effects:\n  - effect: Ends sessions.\n    when: {}\n', /^side_effects\.0/],
  ]
  for (const [yaml, want] of cases) {
    const r = write(yaml)
    t.equal(r.counts.actionsLoaded, 0, `refused: ${yaml.trim()}`)
    t.match(r.errors.map((e) => `${e.field}: ${e.message}`).join('\n'), want)
    t.ok(r.errors.every((e) => e.file.endsWith('a.yaml')), 'the error names the file')
  }
})
