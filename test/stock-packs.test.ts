/**
 * The stock packs as an approver and a security reviewer read them: they all
 * load, every action declares what it changes, its limits and an example, no
 * action reaches a shell, risk levels are what the design says, and every
 * free-text argument is pinned down by a pattern or an enum.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { loadPacks, prepareInvocation, resolveListRoot, type LoadedAction } from '@writ/packs'
import { REPO_ROOT } from './doubles/fixtures-dir.js'

const STOCK = join(REPO_ROOT, 'packs', 'stock')
const loaded = loadPacks([STOCK])
const actions: LoadedAction[] = loaded.packs.flatMap((p) => [...p.actions.values()])

const EXPECTED: Record<string, string[]> = {
  debugging: ['dmesg_tail', 'loadavg', 'disk_free', 'journal_tail'],
  docker: ['ps', 'logs', 'inspect'],
  storage: ['csi_volume_ls', 'blkid', 'lsblk', 'iscsi_sessions'],
  multipath: ['topology', 'maps_json', 'paths'],
  nomad: ['node_status', 'node_allocs', 'alloc_status', 'alloc_stop', 'node_drain', 'node_eligibility'],
}
const RISK: Record<string, string> = { 'nomad.alloc_stop': 'high', 'nomad.node_drain': 'high', 'nomad.node_eligibility': 'medium' }
const SHELLS = ['sh', 'bash', 'dash', 'zsh', 'ksh', 'ash', 'busybox', 'fish', 'csh', 'tcsh', 'env', 'python', 'python3', 'perl', 'ruby', 'node', 'xargs', 'timeout', 'nsenter', 'sudo', 'su']
const TEXT_TYPES = new Set(['string', 'path', 'duration', 'string_array'])

t.test('every stock pack and action loads, with zero errors', async (t) => {
  t.same(loaded.errors, [])
  t.same(loaded.counts, { packsLoaded: 5, packsFailed: 0, actionsLoaded: 20, actionsFailed: 0 })
  for (const [pack, ids] of Object.entries(EXPECTED)) {
    const p = loaded.packs.find((x) => x.id === pack)
    t.ok(p, `pack ${pack}`)
    t.same([...(p?.actions.keys() ?? [])].sort(), ids.map((id) => `${pack}.${id}`).sort(), `${pack} has exactly its actions`)
    t.match(p?.digest, /^[0-9a-f]{64}$/)
  }
})

t.test('every action states risk, a summary, side effects, timeout, output caps, parser and an example in its YAML', async (t) => {
  for (const a of actions) {
    // Read the file itself: schema defaults would hide a missing declaration.
    const raw = parseYaml(readFileSync(a.file, 'utf8')) as Record<string, any>
    t.equal(raw.schema_version, 1, `${a.id} schema_version`)
    t.ok(['low', 'medium', 'high', 'critical'].includes(raw.risk), `${a.id} risk`)
    t.ok(typeof raw.description === 'string' && raw.description.length > 80, `${a.id} explains itself`)
    // An entry is prose, or prose with the argument condition under which it applies.
    const effectText = (s: any): unknown => (typeof s === 'object' && s !== null && s.when ? s.effect : s)
    t.ok(Array.isArray(raw.side_effects) && raw.side_effects.length > 0 && raw.side_effects.every((s: unknown) => typeof effectText(s) === 'string' && (effectText(s) as string).length > 10), `${a.id} side_effects`)
    t.ok(raw.summary !== undefined, `${a.id} summary: the change in one line`)
    t.match(raw.execution?.timeout, /^\d+(ms|s|m)$/, `${a.id} timeout`)
    t.ok(Number.isInteger(raw.output?.max_stdout_bytes) && Number.isInteger(raw.output?.max_stderr_bytes), `${a.id} output caps`)
    t.ok(typeof raw.output?.parser === 'string', `${a.id} parser`)
    t.ok(Array.isArray(raw.examples) && raw.examples.length > 0, `${a.id} example`)
    for (const ex of a.spec.examples) t.ok(prepareInvocation(a.spec, ex.args).ok, `${a.id} example "${ex.title}" satisfies the contract`)
  }
})

t.test('no action uses a shell, a script, or a wrapper that runs other commands', async (t) => {
  for (const a of actions) {
    t.not(a.spec.kind, 'script', `${a.id} is not a script`)
    t.equal(a.usesShell, false, `${a.id} loader sees no shell`)
    if (a.spec.kind === 'exec') {
      const bin = basename(a.spec.execution.command.binary)
      t.notOk(SHELLS.includes(bin), `${a.id} runs ${bin}`)
      t.notOk(a.spec.execution.env, `${a.id} sets no environment`)
    }
  }
})

t.test('risk levels: alloc_stop and node_drain high, node_eligibility medium, everything else low', async (t) => {
  for (const a of actions) t.equal(a.spec.risk, RISK[a.id] ?? 'low', a.id)
})

t.test('every text argument has a pattern or an enum; numbers have bounds', async (t) => {
  for (const a of actions) {
    for (const arg of a.spec.args) {
      const v = arg.validation ?? {}
      if (TEXT_TYPES.has(arg.type)) t.ok(v.pattern !== undefined || v.enum !== undefined, `${a.id}.${arg.name} (${arg.type}) is pinned down`)
      if (arg.type === 'integer' || arg.type === 'number') t.ok(v.min !== undefined && v.max !== undefined, `${a.id}.${arg.name} has min and max`)
    }
  }
})

t.test('API paths: Nomad under /v1/, Docker without a version prefix', async (t) => {
  for (const a of actions) {
    if (a.spec.kind !== 'http') continue
    const h = a.spec.execution.http
    if (h.target === 'nomad') t.match(h.path, /^\/v1\//, a.id)
    else t.notMatch(h.path, /^\/v\d/, `${a.id}: the runner adds the negotiated version`)
  }
})

t.test('hostile strings never reach an exec argv', async (t) => {
  const hostile = ['; rm -rf /', '$(id)', '`id`', 'a\nb', '--help', '-h', '../../etc/passwd', '/dev/sda; reboot', 'x|y', '']
  for (const a of actions) {
    if (a.spec.kind !== 'exec') continue
    for (const arg of a.spec.args.filter((x) => x.type === 'string')) {
      for (const value of hostile) {
        const r = prepareInvocation(a.spec, { ...requiredArgs(a), [arg.name]: value })
        t.equal(r.ok, false, `${a.id}.${arg.name} refuses ${JSON.stringify(value)}`)
      }
    }
  }
})

t.test('storage.csi_volume_ls stays under the Nomad CSI root of the runner\'s own data_dir', async (t) => {
  const ls = actions.find((a) => a.id === 'storage.csi_volume_ls')
  if (!ls || ls.spec.kind !== 'list') return t.fail('csi_volume_ls is a list action')
  t.equal(ls.spec.execution.list.root, '{{ runner.nomad_data_dir }}/client/csi', 'the pack names the data dir; each runner knows where it is')
  for (const path of ['..', '../x', 'a/../../b', '/etc', './x', 'a//b', 'a/./b', '.hidden']) {
    t.equal(prepareInvocation(ls.spec, { path }).ok, false, `refuses ${path}`)
  }
  const ok = prepareInvocation(ls.spec, { path: 'node/org.democratic-csi.iscsi/staging' })
  t.same(ok.ok && ok.invocation, { kind: 'list', root: '{{ runner.nomad_data_dir }}/client/csi', relPath: 'node/org.democratic-csi.iscsi/staging', maxEntries: 2000, maxDepth: 4 })
  if (!ok.ok || ok.invocation.kind !== 'list') return
  t.same(resolveListRoot(ok.invocation.root, { nomad_data_dir: '/srv/nomad' }), { ok: true, root: '/srv/nomad/client/csi' })
  t.same(resolveListRoot(ok.invocation.root, { nomad_data_dir: '/opt/nomad/data/' }), { ok: true, root: '/opt/nomad/data/client/csi' })
  t.match(resolveListRoot(ok.invocation.root, {}), { ok: false, message: /needs this runner's nomad_data_dir setting/ })
})

t.test('storage.blkid: a short timeout, exit 2 is not success, and the description says why', async (t) => {
  const b = actions.find((a) => a.id === 'storage.blkid')
  if (!b || b.spec.kind !== 'exec') return t.fail('blkid is exec')
  t.equal(b.spec.execution.timeout, '5s')
  t.same(b.spec.execution.success_exit_codes, [0])
  t.match(b.spec.description, /Exit 2 means "no signature found OR the device did not answer"/)
  t.match(b.spec.description, /must never be taken as proof that the device is blank/)
  t.same(prepareInvocation(b.spec, { device: '/dev/mapper/mpatha' }), { ok: true, args: { device: '/dev/mapper/mpatha' }, invocation: { kind: 'exec', binary: 'blkid', argv: ['-p', '-o', 'export', '/dev/mapper/mpatha'], env: {} } })
  for (const device of ['/dev/mapper/..', '/dev/sda/../../etc/shadow', '/etc/passwd', '/dev/mapper/', 'sda']) {
    t.equal(prepareInvocation(b.spec, { device }).ok, false, `refuses ${device}`)
  }
})

t.test('storage.iscsi_sessions: "no sessions" (exit 21) is an answer, not a failure', async (t) => {
  const i = actions.find((a) => a.id === 'storage.iscsi_sessions')
  t.same(i?.spec.kind === 'exec' && i.spec.execution.success_exit_codes, [0, 21])
})

/** The smallest valid set of required arguments, taken from the action's first example. */
function requiredArgs(a: LoadedAction): Record<string, unknown> {
  const ex = a.spec.examples[0]?.args ?? {}
  return Object.fromEntries(a.spec.args.filter((x) => x.required).map((x) => [x.name, ex[x.name]]))
}

t.test('nomad.node_allocs tells its reader that Nomad drops allocations of namespaces the token cannot read', async (t) => {
  const a = actions.find((x) => x.id === 'nomad.node_allocs')
  // Node.GetAllocs filters by read-job per namespace and says nothing: an approver must not read "empty" as "nothing runs here".
  t.match(a?.spec.description, /leaves out, without an error[^.]*every\s+allocation in a namespace the caller may not read-job in/)
  t.match(a?.spec.description, /managed_namespaces/, 'and names where writ\'s runner stands')
  t.match(a?.spec.description, /drain\s+still moves/, 'and what it means for a drain')
})
