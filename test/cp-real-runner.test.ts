import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type AuditEvent } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture, auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startCpProcess } from './helpers/cp-process.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'control-plane', 'dist', 'cli.js')

t.test('control plane and the real node-runner, end to end', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 5000, 'runner heartbeat')
  const post = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { node: 'host-1', reason: 'e2e', ...payload } })

  const echo = await post({ action: 'testops.echo', args: { message: 'hello from writ' }, wait: 10 })
  t.match(echo.json(), { status: 'succeeded', result: { exit_code: 0, stdout: 'hello from writ\n' } })

  const list = await post({ action: 'testops.list', args: {}, wait: 10 })
  t.match(list.json(), { status: 'succeeded' })
  t.match(JSON.stringify(list.json().result), /a\.txt/)

  const slow = await post({ action: 'testops.sleep', args: { seconds: 5 }, wait: 10 })
  t.match(slow.json(), { status: 'timed_out' }, 'the declared 2 s timeout is enforced by the runner')

  const cancelMe = await post({ action: 'testops.sleep', args: { seconds: 1 } })
  t.equal(cancelMe.statusCode, 202)
  const cancel = await app.inject({ method: 'POST', url: `/v1/runs/${cancelMe.json().id}/cancel`, headers: auth(fx.tokens.agent) })
  t.equal(cancel.statusCode, 200)
  const canceled = await app.inject({ method: 'GET', url: `/v1/runs/${cancelMe.json().id}?wait=10`, headers: auth(fx.tokens.agent) })
  t.match(canceled.json(), { status: 'canceled', cancel_requested_by: 'agent-1' })

  t.test('the CLI prints the live output of a real run', async (t) => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    const res = await new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'run', 'testops.echo', '--node', 'host-1', '--arg', 'message=cli says hi', '--reason', 'cli e2e'], { env: { ...process.env, WRIT_URL: url, WRIT_TOKEN: fx.tokens.agent } }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }))
    })
    t.equal(res.code, 0, res.stderr)
    t.equal(res.stdout, 'cli says hi\n')
    t.match(res.stderr, /succeeded — exited 0/)
  })

  const audit = await app.inject({ method: 'GET', url: '/v1/audit', headers: auth(fx.tokens.operator) })
  const types = audit.body.trim().split('\n').map((l) => (JSON.parse(l) as AuditEvent).type)
  t.ok(types.includes('run.cancel_requested'))
})

t.test('kill -9 the control plane while the real runner works: the run finishes after restart', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const runner = await startRealRunner(fx, nats.url, 'host-2')
  t.teardown(() => runner.close())
  const configFile = fx.writeConfigFile()
  const first = await startCpProcess(configFile)
  t.teardown(() => first.stop())
  const headers = { authorization: `Bearer ${fx.tokens.agent}`, 'content-type': 'application/json' }
  await eventually(async () => ((await (await fetch(`${first.url}/v1/nodes`, { headers })).json()) as { nodes: Array<{ online: boolean }> }).nodes.some((n) => n.online), 5000, 'node')
  const res = await fetch(`${first.url}/v1/runs`, { method: 'POST', headers, body: JSON.stringify({ action: 'testops.sleep', node: 'host-2', args: { seconds: 1 }, reason: 'crash with a real runner' }) })
  const id = ((await res.json()) as { id: string }).id
  await first.kill9()
  // The run goes on without a control plane: restart only once the runner has put its result into JetStream
  // (journaled as published), so the new instance must pick up a result nobody was listening for.
  const journal = join(fx.dir, 'journal-host-2.jsonl')
  const published = (): boolean => readFileSync(journal, 'utf8').split('\n').some((line) => {
    try { const e = JSON.parse(line) as { type: string, run_id: string }; return e.type === 'finished' && e.run_id === id } catch { return false }
  })
  await eventually(published, 10_000, 'the runner to publish the result')
  const second = await startCpProcess(configFile)
  t.teardown(() => second.stop())
  const run = await (await fetch(`${second.url}/v1/runs/${id}?wait=10`, { headers })).json() as { status: string }
  t.equal(run.status, 'succeeded')
  const verify = await new Promise<{ code: number, stdout: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'audit', 'verify', '--nats', nats.url, '--trusted-keys', fx.publicKeyFile, '--witness', journal], (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }))
  })
  t.equal(verify.code, 0)
  // requested, dispatched, the restart's checkpoint over the tail the crash left, finished (in either order), the shutdown's.
  t.match(verify.stdout, /audit chain OK .*\n {2}events: [45], sequence 1–[45]/)
  t.match(verify.stdout, /witnesses: 1 of 1 witnessed request hash\(es\) found on the chain/)
})
