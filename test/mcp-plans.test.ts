/**
 * An agent asks one question of a 100-node simulated fleet (real runners,
 * each with its own kernel log) through MCP: "which nodes log failing
 * multipath paths?" — one run_action with targets, one wait_for_run with the
 * plan id, one grouped answer: 97 quiet nodes, 3 with path failures, by name.
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '@writ/control-plane'
import type { NodeRunner } from '@writ/node-runner'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { STOCK_PACKS } from './helpers/runner-harness.js'
import { incidentKernelLog } from './helpers/kernel-log.js'
import { connectMcp } from './helpers/mcp-client.js'

const FLEET = 100
const FAILING = new Set(['mcp-017', 'mcp-042', 'mcp-088'])

t.test('one question of 100 nodes, one grouped answer', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { plans: { max_targets: 200, lease: '10s' } })
  t.teardown(() => fx.cleanup())
  fx.config.packs.dirs.push(STOCK_PACKS)
  const logs = join(fx.dir, 'kernel-logs')
  mkdirSync(logs)
  writeFileSync(join(logs, 'quiet.log'), '<6>[    1.000000] Linux version 6.1.0 (fixture)\n<6>[    2.500000] EXT4-fs (sda1): mounted filesystem with ordered data mode\n')
  writeFileSync(join(logs, 'incident.log'), incidentKernelLog())
  const app: FastifyInstance = await buildApp(fx.config)
  t.teardown(() => app.close())
  const runners: NodeRunner[] = []
  t.teardown(async () => { for (const r of runners) await r.close() })
  for (let i = 0; i < FLEET; i++) {
    const id = `mcp-${String(i).padStart(3, '0')}`
    runners.push(await startRealRunner(fx, nats.url, id, { heartbeatIntervalMs: 2000, kernelLogFile: join(logs, FAILING.has(id) ? 'incident.log' : 'quiet.log') }))
  }
  await eventually(() => app.writ.fleet.onlineCount === FLEET, 20_000, 'the fleet online')
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const agent = await connectMcp(url, fx.tokens.agent)
  t.teardown(() => agent.close())
  const transcript: string[] = []
  const call = async (name: string, args: Record<string, unknown>) => {
    transcript.push(`→ ${name} ${JSON.stringify(args)}`)
    const a = await agent.call(name, args)
    transcript.push(`← ${JSON.stringify(a.value)}`)
    return a
  }

  const asked = await call('run_action', {
    action: 'debugging.dmesg_tail', args: { levels: ['err', 'warn'] }, targets: { selector: 'ID matches "^mcp-"' },
    reason: 'Which nodes log failing multipath paths? One look at every node instead of a hundred calls.', session_id: 'mpath-1', wait_seconds: 0,
  })
  t.equal(asked.isError, false, JSON.stringify(asked.value))
  const planId = asked.value.plan_id as string
  t.match(planId, /^p/)
  const answer = await call('wait_for_run', { run_id: planId, wait_seconds: 30 })
  const v = answer.value as { status: string, counts: Record<string, number>, summary: string, groups: Array<{ count: number, nodes: string[], output: string }> }
  t.equal(v.status, 'succeeded')
  t.equal(v.counts.succeeded, FLEET)
  t.equal(v.groups.length, 2, 'two kinds of answer: quiet, and failing paths')
  const [quiet, failing] = v.groups as [typeof v.groups[number], typeof v.groups[number]]
  t.equal(quiet.count, 97)
  t.equal(failing.count, 3)
  t.same([...failing.nodes].sort(), [...FAILING].sort(), 'the three nodes by name')
  t.match(failing.output, /Failing path/)
  t.match(v.summary, /^97 nodes: succeeded.*; 3 nodes: succeeded/)
  t.ok(JSON.stringify(v).length < 12_000 + 4000, `one answer of ${JSON.stringify(v).length} characters for ${FLEET} nodes`)

  const bad = await call('run_action', { action: 'debugging.dmesg_tail', node: 'mcp-001', targets: { nodes: ['mcp-001'] }, reason: 'both' })
  t.match(bad.value, { status: 'invalid_arguments' })
  const listed = JSON.stringify((await agent.client.listTools()).tools).length
  t.ok(listed <= 10 * 1024, `tools/list is ${listed} bytes with targets and rollout (at most 10 KiB)`)
  t.comment(`MCP transcript:\n${transcript.map((l) => (l.length > 3000 ? `${l.slice(0, 3000)}…` : l)).join('\n')}`)
})
