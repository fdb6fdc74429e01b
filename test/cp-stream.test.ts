import t from 'tap'
// The injectWS decorator's type comes with the plugin's declarations.
import type {} from '@fastify/websocket'
import type { WebSocket } from 'ws'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

function collect(ws: WebSocket): Array<Record<string, any>> {
  const frames: Array<Record<string, any>> = []
  ws.on('message', (raw) => frames.push(JSON.parse(raw.toString())))
  return frames
}

t.test('/v1/stream: live output and audit events, only what the caller may see', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 400 })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.onlineCount === 1, 3000, 'node online')

  await t.rejects(app.injectWS('/v1/stream'), 'no token, no socket')

  const mine = await app.injectWS('/v1/stream', { headers: auth(fx.tokens.agent) })
  const theirs = await app.injectWS('/v1/stream', { headers: auth(fx.tokens.agent2) })
  const ops = await app.injectWS('/v1/stream', { headers: auth(fx.tokens.operator) })
  t.teardown(() => { mine.terminate(); theirs.terminate(); ops.terminate() })
  const mineFrames = collect(mine)
  const theirFrames = collect(theirs)
  const opsFrames = collect(ops)
  for (const ws of [mine, theirs, ops]) ws.send(JSON.stringify({ type: 'subscribe_audit' }))
  await eventually(() => [mineFrames, theirFrames, opsFrames].every((f) => f.some((x) => x.type === 'subscribed')), 2000, 'audit subscriptions')

  const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.echo', node: 'node-1', args: { message: 'live' }, reason: 'stream test' } })
  const runId = res.json().id as string
  mine.send(JSON.stringify({ type: 'subscribe', run_id: runId }))
  theirs.send(JSON.stringify({ type: 'subscribe', run_id: runId }))
  await eventually(() => mineFrames.some((f) => f.type === 'run' && f.run.status === 'succeeded'), 5000, 'run finished on the stream')

  const output = mineFrames.filter((f) => f.type === 'output')
  t.equal(output.length, 1)
  t.match(output[0]?.chunk, { run_id: runId, seq: 0, stream: 'stdout', data: /live/ })
  t.match(theirFrames.find((f) => f.type === 'error'), { error: { code: 'WRIT_ERR_RUN_NOT_FOUND' } }, 'another agent cannot follow the run')
  t.notOk(theirFrames.some((f) => f.type === 'output'))

  await eventually(() => opsFrames.filter((f) => f.type === 'audit').length >= 3, 3000, 'operator sees the run\'s events')
  const mineAudit = mineFrames.filter((f) => f.type === 'audit').map((f) => f.event.type)
  t.same(mineAudit, ['run.requested', 'run.dispatched', 'run.finished'], 'the requester sees its own run\'s events')
  t.same(theirFrames.filter((f) => f.type === 'audit'), [], 'another agent sees none of them')

  mine.send('not json')
  mine.send(JSON.stringify({ type: 'subscribe', run_id: runId, extra: 1 }))
  await eventually(() => mineFrames.filter((f) => f.type === 'error').length === 2, 2000, 'two errors')
  t.same(mineFrames.filter((f) => f.type === 'error').map((f) => f.error.code), ['WRIT_ERR_MALFORMED_JSON', 'WRIT_ERR_VALIDATION'])
})
