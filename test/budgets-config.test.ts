/**
 * Budgets in config: `principals[].budgets` with `mutations_per_hour`,
 * `nodes_per_hour`, `runs_per_minute`. A value below zero, a fraction, a
 * string or an unknown budget stops the boot with an error naming the key.
 */
import t from 'tap'
import { parseConfig, hashToken } from '@writ/control-plane'

const base = (budgets: unknown) => ({
  packs: { dirs: ['/tmp/packs'] }, signing: { key_file: '/tmp/key.pem' },
  principals: [
    { id: 'ops', kind: 'operator', token_sha256: hashToken('tok-ops-0123456789') },
    { id: 'agent-1', kind: 'agent', token_sha256: hashToken('tok-agent-0123456789'), budgets },
  ],
})

t.test('good budgets load, each optional, 0 allowed', async (t) => {
  const c = parseConfig(base({ mutations_per_hour: 10, nodes_per_hour: 0, runs_per_minute: 60 }))
  t.same(c.principals[1]?.budgets, { mutations_per_hour: 10, nodes_per_hour: 0, runs_per_minute: 60 })
  t.same(parseConfig(base({ runs_per_minute: 5 })).principals[1]?.budgets, { runs_per_minute: 5 })
  t.equal(parseConfig(base(undefined)).principals[1]?.budgets, undefined, 'no budgets: nothing counted')
})

t.test('bad budgets are config errors naming the key', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ mutations_per_hour: -1 }, /principals\.1\.budgets\.mutations_per_hour: a budget cannot be below zero/],
    [{ nodes_per_hour: -5 }, /principals\.1\.budgets\.nodes_per_hour: a budget cannot be below zero/],
    [{ runs_per_minute: -0.5 }, /principals\.1\.budgets\.runs_per_minute: /],
    [{ runs_per_minute: 1.5 }, /principals\.1\.budgets\.runs_per_minute: expected a whole number/],
    [{ runs_per_minute: '10' }, /principals\.1\.budgets\.runs_per_minute: expected a whole number/],
    [{ writes_per_day: 3 }, /principals\.1\.budgets: .*writes_per_day/],
  ]
  for (const [budgets, re] of cases) {
    t.throws(() => parseConfig(base(budgets)), { name: 'ConfigError', message: re }, JSON.stringify(budgets))
  }
})
