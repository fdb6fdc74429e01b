/**
 * The pack contract as both daemons enforce it: argument validation, argv and
 * URL rendering, canonical JSON and writ signatures.
 */
import t from 'tap'
import { ActionFileSchema, canonicalJson, prepareInvocation, validateArgs, type ActionFile, type ArgSpec } from '@writ/packs'
import { generateSigningKeyPair, loadSigningKey, loadTrustedKey, signWrit, verifySignature, WRIT_VERSION, newBindingSalt, newNonce, type Writ } from '@writ/packs/protocol'

const action = (over: Record<string, unknown>): ActionFile => ActionFileSchema.parse({
  schema_version: 1, id: 'demo.thing', title: 'demo', kind: 'exec', risk: 'low',
  execution: { command: { binary: 'echo', argv: [] }, timeout: '5s' }, ...over,
})

t.test('argument validation: types, required, defaults, bounds, patterns, enums, unknown args', async (t) => {
  const specs: ArgSpec[] = [
    { name: 'lines', type: 'integer', required: false, default: 100, validation: { min: 1, max: 5000 } },
    { name: 'unit', type: 'string', required: true, validation: { pattern: '[a-z-]+\\.service', max_length: 40 } },
    { name: 'mode', type: 'string', required: false, validation: { enum: ['a', 'b'] } },
    { name: 'follow', type: 'boolean', required: false },
    { name: 'since', type: 'duration', required: false, validation: { max_duration: '24h' } },
  ]
  t.same(validateArgs(specs, { unit: 'nomad.service' }), { ok: true, args: { lines: 100, unit: 'nomad.service' } }, 'defaults fill in')
  t.same(validateArgs(specs, { unit: 'x.service', lines: '20', follow: 'true' }), { ok: true, args: { lines: 20, unit: 'x.service', follow: true } }, 'unambiguous strings are coerced')
  const bad = validateArgs(specs, { unit: 'nomad.service; rm -rf /', lines: 0, mode: 'c', extra: 1, since: '2d' })
  t.equal(bad.ok, false)
  if (!bad.ok) t.same(bad.errors.map((e) => `${e.arg}:${e.code}`).sort(), ['extra:unknown_arg', 'lines:min', 'mode:enum', 'since:duration', 'unit:pattern'])
  const missing = validateArgs(specs, {})
  t.same(missing.ok ? [] : missing.errors.map((e) => e.code), ['missing'])
  const partialMatch = validateArgs([{ name: 'id', type: 'string', required: true, validation: { pattern: '[a-f0-9]{8}' } }], { id: 'deadbeef; ls' })
  t.equal(partialMatch.ok, false, 'an unanchored pattern still has to match the whole value')
  t.equal(validateArgs(specs, { unit: 'a.service\nb' }).ok, false, 'control characters are refused')
  t.equal(validateArgs(specs, ['not', 'an', 'object']).ok, false)
  const proto = validateArgs(specs, JSON.parse('{"unit":"a.service","__proto__":{"polluted":1}}'))
  t.equal(proto.ok, false, '__proto__ is an unknown argument, not a prototype')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('argv rendering: whole elements only, flag lookalikes refused, absent optionals dropped', async (t) => {
  const a = action({
    args: [{ name: 'unit', type: 'string', required: true }, { name: 'n', type: 'integer', required: false }],
    execution: { command: { binary: 'journalctl', argv: ['-u', '{{ args.unit }}', '-n', '{{ args.n }}', '--no-pager'] }, timeout: '5s' },
  })
  const r = prepareInvocation(a, { unit: 'a b; c' })
  t.ok(r.ok)
  if (r.ok && r.invocation.kind === 'exec') t.same(r.invocation.argv, ['-u', 'a b; c', '-n', '--no-pager'], 'the value is one element; "-n" stays (literal) and its absent value is dropped')
  const flag = prepareInvocation(a, { unit: '--since=yesterday' })
  t.equal(flag.ok, false)
  if (!flag.ok) t.equal(flag.errors[0]?.code, 'looks_like_flag')
  const afterDashes = prepareInvocation(action({
    args: [{ name: 'p', type: 'string', required: true }],
    execution: { command: { binary: 'ls', argv: ['--', '{{ args.p }}'] }, timeout: '5s' },
  }), { p: '-weird-name' })
  t.ok(afterDashes.ok, 'after a literal "--" a leading dash is just a name')
})

t.test('http rendering: encoded path parts, no dot segments, typed body values', async (t) => {
  const a = action({
    kind: 'http',
    args: [{ name: 'id', type: 'string', required: true }, { name: 'deadline', type: 'duration', required: false, default: '1h' }, { name: 'ignore', type: 'boolean', required: false, default: true }],
    execution: { http: { target: 'nomad', method: 'POST', path: '/v1/node/{{ args.id }}/drain', query: { stale: '{{ args.ignore }}' }, body: { DrainSpec: { Deadline: '{{ args.deadline | duration_ns }}', IgnoreSystemJobs: '{{ args.ignore }}' } } }, timeout: '5s' },
  })
  const r = prepareInvocation(a, { id: 'a/../b?c' })
  t.ok(r.ok)
  if (r.ok && r.invocation.kind === 'http') {
    t.equal(r.invocation.path, '/v1/node/a%2F..%2Fb%3Fc/drain?stale=true', 'the argument is one encoded path segment')
    t.same(JSON.parse(JSON.stringify(r.invocation.body)), { DrainSpec: { Deadline: 3_600_000_000_000, IgnoreSystemJobs: true } })
  }
  for (const v of ['..', '.']) {
    const dots = prepareInvocation(a, { id: v })
    t.equal(dots.ok, false, `"${v}" cannot be a path segment`)
  }
})

t.test('canonical JSON is key-order independent and keeps __proto__ as data', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [3, { d: 1, c: 2 }] }), '{"a":[3,{"c":2,"d":1}],"b":1}')
  t.equal(canonicalJson(JSON.parse('{"__proto__":{"x":1},"a":1}')), '{"__proto__":{"x":1},"a":1}')
  t.throws(() => canonicalJson({ n: Number.NaN }))
})

t.test('writ signatures: verify, reject tampering and unknown keys', async (t) => {
  const kp = generateSigningKeyPair()
  const key = loadSigningKey(kp.privatePem)
  const trusted = [loadTrustedKey(kp.publicPem)]
  const writ: Writ = {
    v: WRIT_VERSION, run_id: 'run_0123456789', node_id: 'n1', node_name: 'n1', action: 'debugging.loadavg', pack: 'debugging',
    pack_digest: 'a'.repeat(64), args: {}, reason: 'r', requester: { id: 'a', kind: 'agent' }, approvals: [], request_hash: 'e'.repeat(64), options: {},
    issued_at: new Date().toISOString(), expires_at: new Date().toISOString(), nonce: newNonce(), binding_salt: newBindingSalt(),
  }
  const s = signWrit(writ, key)
  t.same(verifySignature(s.writ, s.key_id, s.sig, trusted), { ok: true })
  t.equal(verifySignature({ ...s.writ, node_id: 'n2' }, s.key_id, s.sig, trusted).ok, false)
  const other = loadTrustedKey(generateSigningKeyPair().publicPem)
  t.match(verifySignature(s.writ, s.key_id, s.sig, [other]), { ok: false, code: 'unknown_key' })
})
