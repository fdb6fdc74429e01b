/**
 * The stock `nomad` pack against a Nomad double speaking the published wire
 * format: each action makes exactly the documented call (method, path, query,
 * token header, body), answers come back as parseable JSON, the agent's
 * plain-text errors become typed failures, and bad IDs never reach the API.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'
import { FIXTURES_DIR } from './doubles/fixtures-dir.js'
import { outcomeOf, runHttpAction } from './helpers/run-http-action.js'
import { closeHttpClients } from '../node-runner/dist/executors/http-executor.js'

const TOKEN = 'a9f1c3e2-6d4b-4c1e-9b7a-2f0e8d5c4b3a'
const READ_ONLY_TOKEN = '0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f'
const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES_DIR, 'nomad', name), 'utf8'))

let nomad: NomadDouble
t.before(async () => { nomad = await startNomadDouble({ token: TOKEN, readOnlyToken: READ_ONLY_TOKEN }) })
t.teardown(async () => { await closeHttpClients(); await nomad.close() })
t.beforeEach(() => { nomad.requests.length = 0; nomad.stall = false })

/** `token: null` sends no token at all. */
const run = (id: string, args: Record<string, unknown>, token: string | null = TOKEN, extra = {}) =>
  runHttpAction(id, args, { nomad: { addr: nomad.addr, ...(token !== null ? { token } : {}) }, ...extra })

t.test('nomad.alloc_stop makes exactly POST /v1/allocation/<id>/stop with the token and no body', async (t) => {
  const out = outcomeOf(await run('nomad.alloc_stop', { alloc_id: nomad.ids.alloc }))
  t.equal(out.status, 'succeeded', out.error ?? 'succeeded')
  t.equal(out.exitCode, null, 'an API call has no exit code')
  t.same(JSON.parse(out.stdout), fixture('POST_allocation_stop.json'), 'the EvalID answer comes back as JSON')
  t.equal(nomad.requests.length, 1, 'one request, nothing else')
  const [req] = nomad.requests
  t.equal(req?.method, 'POST')
  t.equal(req?.path, `/v1/allocation/${nomad.ids.alloc}/stop`)
  t.same(req?.query, {}, 'no query unless asked for')
  t.equal(req?.headers['x-nomad-token'], TOKEN)
  t.equal(req?.body, '', 'no body')
  t.notOk(req?.headers['content-type'], 'no content type without a body')
  t.notMatch(JSON.stringify(out), TOKEN, 'the token appears nowhere in the outcome')
})

t.test('nomad.alloc_stop with no_shutdown_delay adds only that query parameter', async (t) => {
  const out = outcomeOf(await run('nomad.alloc_stop', { alloc_id: nomad.ids.alloc, no_shutdown_delay: true }))
  t.equal(out.status, 'succeeded', out.error ?? 'succeeded')
  t.same(nomad.requests.map((r) => [r.method, r.path, r.query]), [['POST', `/v1/allocation/${nomad.ids.alloc}/stop`, { no_shutdown_delay: 'true' }]])
})

t.test('read actions: node_status, node_allocs, alloc_status', async (t) => {
  const node = outcomeOf(await run('nomad.node_status', { node_id: nomad.ids.node }))
  t.equal(node.status, 'succeeded', node.error ?? 'succeeded')
  t.equal((JSON.parse(node.stdout) as { ID: string }).ID, nomad.ids.node, 'the (repaired) node record parses')
  t.equal(node.chunks.stdout, node.stdout, 'live chunks add up to the captured output')

  const allocs = outcomeOf(await run('nomad.node_allocs', { node_id: nomad.ids.nodeWithAllocs }))
  t.equal(allocs.status, 'succeeded', allocs.error ?? 'succeeded')
  const list = JSON.parse(allocs.stdout) as Array<{ ID: string, NodeID: string }>
  t.same(list.map((a) => a.ID), [nomad.ids.nodeAlloc])
  t.ok(list.every((a) => a.NodeID === nomad.ids.nodeWithAllocs))

  const alloc = outcomeOf(await run('nomad.alloc_status', { alloc_id: nomad.ids.alloc }))
  t.equal(alloc.status, 'succeeded', alloc.error ?? 'succeeded')
  const a = JSON.parse(alloc.stdout) as { ID: string, ClientStatus: string, DesiredStatus: string }
  t.same([a.ID, a.ClientStatus, a.DesiredStatus], [nomad.ids.alloc, 'running', 'run'])

  t.same(nomad.requests.map((r) => `${r.method} ${r.path}`), [
    `GET /v1/node/${nomad.ids.node}`,
    `GET /v1/node/${nomad.ids.nodeWithAllocs}/allocations`,
    `GET /v1/allocation/${nomad.ids.alloc}`,
  ])
  t.ok(nomad.requests.every((r) => r.headers['x-nomad-token'] === TOKEN && r.body === ''))
})

t.test('nomad.node_drain sends the documented body, Deadline in nanoseconds', async (t) => {
  const out = outcomeOf(await run('nomad.node_drain', {
    node_id: nomad.ids.agentNode, deadline: '1h', ignore_system_jobs: true, message: 'drain for maintenance',
  }))
  t.equal(out.status, 'succeeded', out.error ?? 'succeeded')
  t.same(JSON.parse(out.stdout), fixture('POST_node_drain.json'))
  const [req] = nomad.requests
  t.equal(`${req?.method} ${req?.path}`, `POST /v1/node/${nomad.ids.agentNode}/drain`)
  t.equal(req?.headers['content-type'], 'application/json')
  t.same(JSON.parse(req?.body ?? ''), fixture('POST_node_drain.request.json'), 'byte-for-byte the docs sample payload')

  nomad.requests.length = 0
  await run('nomad.node_drain', { node_id: nomad.ids.agentNode, deadline: '90m' })
  t.same(JSON.parse(nomad.requests[0]?.body ?? ''), {
    DrainSpec: { Deadline: 5_400_000_000_000, IgnoreSystemJobs: false },
    Meta: { message: 'drain requested through writ' },
  }, 'defaults are typed values, not strings')
})

t.test('nomad.node_eligibility sends {"Eligibility": …}', async (t) => {
  const out = outcomeOf(await run('nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'ineligible' }))
  t.equal(out.status, 'succeeded', out.error ?? 'succeeded')
  t.same(JSON.parse(out.stdout), fixture('POST_node_eligibility.json'))
  t.same(JSON.parse(nomad.requests[0]?.body ?? ''), fixture('POST_node_eligibility.request.json'))
  t.equal(nomad.requests[0]?.path, `/v1/node/${nomad.ids.agentNode}/eligibility`)
})

t.test("Nomad's plain-text errors become failed outcomes with the agent's words", async (t) => {
  const unknown = '00000000-0000-4000-8000-000000000000'
  const cases: Array<[string, Record<string, unknown>, string | null, string]> = [
    ['nomad.alloc_status', { alloc_id: unknown }, TOKEN, 'nomad: 404 alloc not found'],
    ['nomad.alloc_stop', { alloc_id: unknown }, TOKEN, 'nomad: 404 allocation not found'],
    ['nomad.node_status', { node_id: unknown }, TOKEN, 'nomad: 404 node not found'],
    ['nomad.node_drain', { node_id: unknown }, TOKEN, 'nomad: 500 node not found'],
    ['nomad.node_eligibility', { node_id: unknown, eligibility: 'eligible' }, TOKEN, 'nomad: 500 node not found'],
    ['nomad.alloc_status', { alloc_id: nomad.ids.alloc }, null, 'nomad: 403 Permission denied'],
    ['nomad.alloc_status', { alloc_id: nomad.ids.alloc }, 'not-a-real-token', 'nomad: 403 ACL token not found'],
    ['nomad.alloc_stop', { alloc_id: nomad.ids.alloc }, READ_ONLY_TOKEN, 'nomad: 403 Permission denied'],
  ]
  for (const [id, args, token, error] of cases) {
    const out = outcomeOf(await run(id, args, token))
    t.equal(out.status, 'failed', `${id} ${error}`)
    t.equal(out.error, error)
    t.equal(out.exitCode, null)
    t.equal(out.stdout, '')
    t.equal(out.stderr, error.replace(/^nomad: \d+ /, ''), 'the body is on stderr')
    if (token) t.notMatch(JSON.stringify(out), token, 'no token in the outcome')
  }
  const ro = outcomeOf(await run('nomad.alloc_status', { alloc_id: nomad.ids.alloc }, READ_ONLY_TOKEN))
  t.equal(ro.status, 'succeeded', 'the read-only token still reads')
})

t.test('bad IDs and values are refused by validation before any request', async (t) => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['nomad.alloc_stop', { alloc_id: '5456bd7a' }],
    ['nomad.alloc_stop', { alloc_id: '5456BD7A-9FC0-C0DD-6131-CBEE77F57577' }],
    ['nomad.alloc_stop', { alloc_id: '../../v1/nodes' }],
    ['nomad.alloc_stop', { alloc_id: `${nomad.ids.alloc}/../x` }],
    ['nomad.alloc_stop', { alloc_id: `${nomad.ids.alloc}?reschedule=true` }],
    ['nomad.alloc_stop', { alloc_id: nomad.ids.alloc, no_shutdown_delay: 'yes' }],
    ['nomad.alloc_stop', { alloc_id: nomad.ids.alloc, reschedule: true }],
    ['nomad.alloc_status', { alloc_id: `${nomad.ids.alloc}\n` }],
    ['nomad.node_status', {}],
    ['nomad.node_allocs', { node_id: '%2e%2e' }],
    ['nomad.node_drain', { node_id: nomad.ids.agentNode, deadline: '10s' }],
    ['nomad.node_drain', { node_id: nomad.ids.agentNode, deadline: '100h' }],
    ['nomad.node_drain', { node_id: nomad.ids.agentNode, deadline: '-1s' }],
    ['nomad.node_drain', { node_id: nomad.ids.agentNode, message: 'x\ny' }],
    ['nomad.node_drain', { node_id: nomad.ids.agentNode, message: '"}, "DrainSpec": null, "x": {"' }],
    ['nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'drain' }],
  ]
  for (const [id, args] of bad) {
    const r = await run(id, args)
    t.equal(r.refused, true, `${id} ${JSON.stringify(args)} refused`)
  }
  t.equal(nomad.requests.length, 0, 'the double recorded zero requests')
})

t.test('a Nomad that does not answer in time → timed_out; a cancel → canceled', async (t) => {
  nomad.stall = true
  const slow = outcomeOf(await run('nomad.node_status', { node_id: nomad.ids.node }, TOKEN, { timeoutMs: 150 }))
  t.equal(slow.status, 'timed_out')
  t.match(slow.error, /no complete answer within 150 ms/)

  const ac = new AbortController()
  setTimeout(() => ac.abort(), 50)
  const canceled = outcomeOf(await run('nomad.node_status', { node_id: nomad.ids.node }, TOKEN, { signal: ac.signal }))
  t.equal(canceled.status, 'canceled')
  t.equal(nomad.requests.length, 2, 'both requests did reach the API')
})

t.test('an unreachable Nomad is a failed run naming the address, never the token', async (t) => {
  const gone = await startNomadDouble()
  const addr = gone.addr
  await gone.close()
  const out = outcomeOf(await runHttpAction('nomad.node_status', { node_id: nomad.ids.node }, { nomad: { addr, token: TOKEN } }))
  t.equal(out.status, 'failed')
  t.match(out.error, `nomad: no Nomad agent at ${addr}`)
  t.match(out.error, /ECONNREFUSED/)
  t.notMatch(JSON.stringify(out), TOKEN)
})

t.test('the Task API socket: a unix:// address works the same, token included', async (t) => {
  const sock = await startNomadDouble({ token: TOKEN, unixSocket: true })
  t.teardown(() => sock.close())
  t.match(sock.addr, /^unix:\/\/\//)
  const out = outcomeOf(await runHttpAction('nomad.alloc_stop', { alloc_id: sock.ids.alloc }, { nomad: { addr: sock.addr, token: TOKEN } }))
  t.equal(out.status, 'succeeded', out.error ?? 'succeeded')
  t.same(sock.requests.map((r) => [r.method, r.path, r.headers['x-nomad-token'], r.body]), [['POST', `/v1/allocation/${sock.ids.alloc}/stop`, TOKEN, '']])
})
