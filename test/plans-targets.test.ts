/**
 * Which nodes a plan reaches: a selector in Nomad's filter syntax over what
 * the Nomad API says of each node (the double serves the fixtures' node
 * records, one per runner), frozen when the plan is made; `$target` binding
 * a node's own id; and every malformed plan refused with a typed 4xx that
 * dispatches nothing.
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '@writ/control-plane'
import type { NodeRunner } from '@writ/node-runner'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture, type CpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'

const FLEET = [
  { id: 'sel-st-1', name: 'sel-st-1', pool: 'storage', datacenter: 'dc1', meta: { rack: 'r1' }, attributes: { 'os.name': 'ubuntu' } },
  { id: 'sel-st-2', name: 'sel-st-2', pool: 'storage', datacenter: 'dc2', meta: { rack: 'r2' }, attributes: { 'os.name': 'ubuntu' } },
  { id: 'sel-web-1', name: 'sel-web-1', pool: 'web', datacenter: 'dc1', meta: { rack: 'r1' }, attributes: { 'os.name': 'debian' } },
]
let app: FastifyInstance
let fx: CpFixture
let nomad: NomadDouble
const runners = new Map<string, NodeRunner>()

t.before(async () => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  nomad = await startNomadDouble({ fleet: FLEET })
  t.teardown(() => nomad.close())
  fx = makeCpFixture(nats.url, { nomad: { addr: nomad.addr, refresh_interval: '500ms' }, plans: { max_targets: 3 } })
  t.teardown(() => fx.cleanup())
  // An action that takes the node's own id: {"$target": "id"} binds it per target.
  const pack = join(fx.dir, 'packs', 'planops')
  mkdirSync(join(pack, 'actions'), { recursive: true })
  writeFileSync(join(pack, 'pack.yaml'), 'schema_version: 1\nid: planops\nname: Plan ops\nversion: 1.0.0\nactions: [actions/whoami.yaml]\n')
  writeFileSync(join(pack, 'actions', 'whoami.yaml'), `schema_version: 1
id: planops.whoami
title: Print the node id it was given
kind: exec
risk: low
side_effects: [None.]
args:
  - { name: node_id, type: string, required: true, validation: { pattern: "^[A-Za-z0-9_-]{1,64}$" } }
  - { name: label, type: string, required: false, default: "x", validation: { pattern: "^[a-z]{1,10}$" } }
execution:
  command: { binary: /bin/echo, argv: ["{{ args.node_id }}"] }
  timeout: 5s
`)
  app = await buildApp(fx.config)
  t.teardown(() => app.close())
  for (const n of FLEET) runners.set(n.id, await startRealRunner(fx, nats.url, n.id))
  t.teardown(async () => { for (const r of runners.values()) await r.close() })
  await eventually(() => FLEET.every((n) => app.writ.fleet.find(n.id)?.nomad.source === 'nomad' && !('unknown' in app.writ.fleet.nomadDetail(n.id))), 10_000, 'Nomad facts of every node')
})

const plan = (payload: Record<string, unknown>, token = fx.tokens.agent) => app.inject({ method: 'POST', url: '/v1/plans', headers: auth(token), payload: { reason: 'selector test', action: 'testops.echo', args: { message: 'hi' }, ...payload } })
const planCount = async () => (await app.inject({ method: 'GET', url: '/v1/plans', headers: auth(fx.tokens.operator) })).json().plans.length as number

t.test('a selector picks nodes by what Nomad says of them, and the frozen list is in the answer', async (t) => {
  const storage = await plan({ targets: { selector: 'NodePool == "storage"' }, wait: 20 })
  t.equal(storage.statusCode, 200, storage.body)
  t.same(storage.json().targets.map((x: { node: string }) => x.node).sort(), ['sel-st-1', 'sel-st-2'])
  const rack = await plan({ targets: { selector: 'Meta["rack"] == "r1" and (Attributes["os.name"] matches "^ubu" or "dc9" in Datacenter)' }, wait: 20 })
  t.same(rack.json().targets.map((x: { node: string }) => x.node), ['sel-st-1'])
  const not = await plan({ targets: { selector: 'not (NodePool == "storage") and Status == "ready"' }, wait: 20 })
  t.same(not.json().targets.map((x: { node: string }) => x.node), ['sel-web-1'])
})

t.test('$target binds each node its own id; the frozen per-target args are what runs', async (t) => {
  const res = await plan({ action: 'planops.whoami', args: { node_id: { $target: 'id' } }, targets: { selector: 'NodePool == "storage"' }, wait: 20 })
  const view = res.json()
  t.equal(view.status, 'succeeded', view.status_reason)
  t.equal(view.groups.length, 2, 'each node printed its own id')
  for (const g of view.groups) t.equal(g.output.trim(), g.nodes[0])
})

t.test('an attribute a node lacks fails closed, with the reason', async (t) => {
  const res = await plan({ targets: { selector: 'Attributes["gpu.model"] == "a100"' } })
  t.equal(res.statusCode, 422, res.body)
  t.equal(res.json().error.code, 'WRIT_ERR_NO_TARGETS')
  t.match(res.json().error.excluded[0].reason, /Attributes\["gpu\.model"\] is not set/)
})

t.test('every malformed plan is a typed 4xx and dispatches nothing', async (t) => {
  const before = await planCount()
  const cases: Array<[string, Record<string, unknown>, number, string, RegExp?]> = [
    ['syntax error, with its position', { targets: { selector: 'NodePool == ' } }, 400, 'WRIT_ERR_VALIDATION', /line 1, column 12: Expected .*a quoted string but end of input found/],
    ['unknown field', { targets: { selector: 'Pool == "storage"' } }, 400, 'WRIT_ERR_VALIDATION', /unknown field "Pool" at line 1, column 1/],
    ['a map field without its key', { targets: { selector: 'Meta == "x"' } }, 400, 'WRIT_ERR_VALIDATION', /needs a key/],
    ['a pattern that could take exponential time', { targets: { selector: 'Name matches "(a+)+$"' } }, 400, 'WRIT_ERR_VALIDATION', /nests quantifiers/],
    ['a selector that matches nothing', { targets: { selector: 'NodePool == "gpu"' } }, 422, 'WRIT_ERR_NO_TARGETS', /matches no node/],
    ['too many targets', { targets: { nodes: ['sel-st-1', 'sel-st-2', 'sel-web-1', 'x'] } }, 400, 'WRIT_ERR_TOO_MANY_TARGETS', /at most 3/],
    ['an unknown node', { targets: { nodes: ['nowhere'] } }, 404, 'WRIT_ERR_NODE_NOT_FOUND'],
    ['$target on an argument that cannot take it', { args: { message: { $target: 'id' } }, targets: { nodes: ['sel-st-1'] } }, 400, 'WRIT_ERR_VALIDATION', /cannot take/],
    ['rollout batch out of range', { targets: { nodes: ['sel-st-1'] }, rollout: { batch: 0 } }, 400, 'WRIT_ERR_VALIDATION'],
    ['max_errors over 100%', { targets: { nodes: ['sel-st-1'] }, rollout: { max_errors: '150%' } }, 400, 'WRIT_ERR_VALIDATION'],
    ['pause without a canary', { targets: { nodes: ['sel-st-1', 'sel-st-2'] }, rollout: { batch: 1, pause: '5s' } }, 400, 'WRIT_ERR_VALIDATION', /canary/],
    ['unknown field in the request', { targets: { nodes: ['sel-st-1'] }, nodee: 'x' }, 400, 'WRIT_ERR_VALIDATION'],
    ['both node list and selector', { targets: { nodes: ['sel-st-1'], selector: 'ID == "x"' } }, 400, 'WRIT_ERR_VALIDATION'],
    ['evidence from another agent', { targets: { nodes: ['sel-st-1'] }, evidence: ['r00000000000000000000'] }, 400, 'WRIT_ERR_EVIDENCE_NOT_FOUND'],
  ]
  for (const [name, payload, status, code, message] of cases) {
    const res = await plan(payload)
    t.equal(res.statusCode, status, `${name}: ${res.body}`)
    t.equal(res.json().error?.code, code, name)
    if (message) t.match(res.json().error.message, message, name)
  }
  const selectorError = await plan({ targets: { selector: 'NodePool == ' } })
  t.match(selectorError.json().error, { line: 1, column: 12 }, 'the position is a field of the error too')
  const tooMany = await app.inject({ method: 'POST', url: '/v1/plans', headers: auth(fx.tokens.agent), payload: { reason: 'r', action: 'testops.echo', args: { message: 'hi' }, targets: { selector: 'ID matches "^sel-"' }, rollout: { batch: 1 } } })
  t.equal(tooMany.statusCode, 200 + 2, 'three targets is within the bound of three')
  t.equal(await planCount(), before + 1, 'no refused plan was stored')
})

t.test('offline nodes are listed as such and do not run; a plan of only offline nodes is refused', async (t) => {
  const web = runners.get('sel-web-1') as NodeRunner
  await web.close()
  runners.delete('sel-web-1')
  await eventually(() => app.writ.fleet.find('sel-web-1')?.online === false, 10_000, 'sel-web-1 offline')
  const some = await plan({ targets: { nodes: ['sel-st-1', 'sel-web-1'] }, wait: 20 })
  t.equal(some.json().status, 'succeeded')
  t.same(some.json().targets.map((x: { node: string }) => x.node), ['sel-st-1'])
  t.match(some.json().excluded, [{ node: 'sel-web-1', reason: /offline/ }])
  const none = await plan({ targets: { nodes: ['sel-web-1'] } })
  t.equal(none.statusCode, 422)
  t.match(none.json().error, { code: 'WRIT_ERR_NO_TARGETS', excluded: [{ node: 'sel-web-1', reason: /offline/ }] })
})
