/**
 * No exception in an executor, parser or client ends the runner: a Nomad or
 * Docker client that throws synchronously, one that rejects, one that rejects
 * with something that is not an Error, each becomes a typed run outcome
 * (`failed` or a refusal, with the cause), the run's result is published,
 * and the same runner takes the next writ.
 */
import t, { type Test } from 'tap'
import type { HttpClients } from '@writ/node-runner'
import { startRunnerHarness, type RunnerHarness } from './helpers/runner-harness.js'

const NODE_ID = '1ac61e33-a465-2ace-f63f-cffa1285e7eb'
const ALLOC = 'a8198d79-cfdb-6593-a999-1e9adabcba2e'

/** What the injected clients do on their next call. */
let nomadFault: () => Promise<void> = async () => undefined
let dockerFault: () => Promise<void> = async () => undefined
const calls: string[] = []
const clients: HttpClients = {
  nomad: (_target, call) => { calls.push(`nomad ${call.method} ${call.path}`); return nomadFault() },
  docker: (_socket, call) => { calls.push(`docker ${call.method} ${call.path}`); return dockerFault() },
}

const throwsSynchronously = (): Promise<void> => { throw new TypeError('client blew up before any request') }
const rejects = (): Promise<void> => Promise.reject(new RangeError('client failed after the request'))
const rejectsWithNonError = (): Promise<void> => Promise.reject(Object.create(null) as unknown as Error)

let h: RunnerHarness
t.before(async () => { h = await startRunnerHarness({ nodeId: NODE_ID, deps: { httpClients: clients } }) })
t.teardown(() => h.stop())
t.beforeEach(() => { calls.length = 0 })

/** The runner is still there: the next writ runs to success on the same process. */
async function runnerGoesOn(t: Test): Promise<void> {
  const next = await h.run('canary.echo', { text: 'still here' })
  t.equal(next.result?.status, 'succeeded', 'the next writ runs')
  t.equal(next.result?.stdout, 'still here')
}

for (const [name, fault, cause] of [
  ['throws synchronously', throwsSynchronously, /client blew up before any request/],
  ['rejects', rejects, /client failed after the request/],
  ['rejects with something that is not an Error', rejectsWithNonError, /nomad|docker|exception/],
] as const) {
  t.test(`a Nomad client that ${name}: the run fails with the cause, the runner goes on`, async (t) => {
    nomadFault = fault
    const { ack, result } = await h.run('nomad.node_status', { node_id: NODE_ID })
    t.ok(ack.accepted, 'the writ was accepted')
    t.equal(result?.status, 'failed', 'a typed failure, not a dead runner')
    t.match(result?.error, cause, `the cause is on the result (${result?.error ?? ''})`)
    t.same(calls, [`nomad GET /v1/node/${NODE_ID}`], 'the client was called once')
    nomadFault = async () => undefined
    await runnerGoesOn(t)
  })

  t.test(`a Docker client that ${name}: the run fails with the cause, the runner goes on`, async (t) => {
    dockerFault = fault
    const { result } = await h.run('docker.logs', { container: 'plugin', tail: 10 })
    t.equal(result?.status, 'failed', 'a typed failure')
    t.match(result?.error, cause, `the cause is on the result (${result?.error ?? ''})`)
    dockerFault = async () => undefined
    await runnerGoesOn(t)
  })

  t.test(`an allocation lookup whose client ${name}: refused, nothing else called, the runner goes on`, async (t) => {
    nomadFault = fault
    const { result } = await h.run('nomad.alloc_stop', { alloc_id: ALLOC })
    t.equal(result?.status, 'refused', 'the stop is refused: the allocation\'s node could not be checked')
    t.equal(result?.refusal?.code, 'target_unavailable')
    t.match(result?.refusal?.message, /cannot check which node allocation .* runs on/)
    t.same(calls, [`nomad GET /v1/allocation/${ALLOC}`], 'only the lookup was attempted; no stop')
    nomadFault = async () => undefined
    await runnerGoesOn(t)
  })
}

t.test('a hundred failing API runs in a row leave the runner as it was', async (t) => {
  nomadFault = rejects
  const statuses = new Set<string | undefined>()
  for (let i = 0; i < 100; i++) statuses.add((await h.run('nomad.node_status', { node_id: NODE_ID })).result?.status)
  t.same([...statuses], ['failed'], 'every one failed with a result')
  t.equal(h.runner.inFlight(), 0, 'nothing is left in flight')
  nomadFault = async () => undefined
  await runnerGoesOn(t)
})
