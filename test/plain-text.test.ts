/**
 * Free text people read — a run's reason and expected outcome, an approval's
 * comment, a deny reason — carries no control character, line separator or
 * bidi override, whichever surface it comes through: each is refused with
 * WRIT_ERR_UNSAFE_TEXT naming the field and the code point (never echoing the
 * text), audited, and changes nothing. The attack it stops: a reason whose
 * cursor-up / erase-line escapes made `writ pending` show a harmless low-risk
 * read in place of a high-risk stop.
 */
import t from 'tap'
import type { AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { connectMcp } from './helpers/mcp-client.js'

/** Moves the cursor up a line and erases it, then prints a harmless-looking line in its place. */
const DISGUISE = 'stop it\u001b[1A\u001b[2K\rdebugging.loadavg on web-1 (low)'

const HOSTILE: Array<[string, string, string]> = [
  ['cursor-up / erase-line escapes', DISGUISE, 'U+001B'],
  ['a bidi override', 'restart \u202Ewol ksir', 'U+202E'],
  ['a bidi isolate', 'restart \u2067x', 'U+2067'],
  ['a C1 control sequence introducer', 'restart \u009b2K', 'U+009B'],
  ['a line separator', 'restart\u2028debugging.loadavg', 'U+2028'],
  ['a newline', 'restart\ndebugging.loadavg', 'U+000A'],
  ['a carriage return', 'restart\rdebugging.loadavg', 'U+000D'],
]

t.test('free text with control or bidi characters is refused on every surface, audited, and changes nothing', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('web-1')?.online, 5000, 'node online')
  const rejected = async (): Promise<AuditEvent[]> => {
    const res = await app.inject({ method: 'GET', url: '/v1/audit?type=request.rejected', headers: auth(fx.tokens.operator) })
    return res.body.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent)
  }
  const request = (extra: Record<string, unknown>) => app.inject({
    method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'web-1', args: {}, reason: 'restart the stuck worker', ...extra },
  })

  await t.test('REST: reason and expected', async (t) => {
    for (const field of ['reason', 'expected'] as const) {
      for (const [what, text, codePoint] of HOSTILE) {
        const before = (await rejected()).length
        const res = await request({ [field]: text })
        t.equal(res.statusCode, 400, `${field}, ${what}`)
        const err = res.json().error
        t.match(err, { code: 'WRIT_ERR_UNSAFE_TEXT', field, code_point: codePoint }, `${field}, ${what}`)
        t.match(err.message, new RegExp(`^${field} holds ${codePoint.replace('+', '\\+')}`), 'the message names the field and the code point')
        t.notMatch(res.body, /loadavg|wol ksir/, 'the text is not echoed')
        const events = (await rejected()).slice(before)
        t.match(events, [{ actor: { id: 'agent-1' }, data: { code: 'WRIT_ERR_UNSAFE_TEXT', details: { field, code_point: codePoint } } }], 'the refusal is audited')
      }
    }
    t.equal(app.writ.store.list({ status: 'pending_approval' }, 100).length, 0, 'no run was recorded')
    t.equal(runner.writs.length, 0, 'nothing was dispatched')

    const plain = await request({ reason: 'redémarrer le worker — bloqué depuis 10 min 🚧\tticket 42', expected: 'il revient (≈1 min)' })
    t.equal(plain.statusCode, 202, 'accents, dashes, emoji and a tab are plain text')
  })

  await t.test('MCP: run_action reason and expected', async (t) => {
    const agent = await connectMcp(url, fx.tokens.agent)
    t.teardown(() => agent.close())
    for (const field of ['reason', 'expected'] as const) {
      const before = (await rejected()).length
      const answer = await agent.call('run_action', { action: 'testops.restart', node: 'web-1', args: {}, reason: 'restart it', [field]: DISGUISE })
      t.equal(answer.isError, true, field)
      t.match(answer.value, { status: 'invalid_arguments', code: 'WRIT_ERR_UNSAFE_TEXT', reason: new RegExp(`^${field} holds U\\+001B ESCAPE`), field, code_point: 'U+001B', next: /plain text/ }, field)
      t.notMatch(JSON.stringify(answer.value), /loadavg/, 'the text is not echoed')
      t.match((await rejected()).slice(before), [{ data: { route: '/mcp', tool: 'run_action', code: 'WRIT_ERR_UNSAFE_TEXT' } }], 'audited')
    }
    t.equal(runner.writs.length, 0, 'nothing was dispatched')
  })

  await t.test('REST: an approval comment and a deny reason', async (t) => {
    const run = (await request({})).json()
    t.equal(run.status, 'pending_approval')
    for (const [what, text, codePoint] of HOSTILE) {
      const approve = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/approve`, headers: auth(fx.tokens.operator), payload: { comment: text, binding: run.approval.binding } })
      t.equal(approve.statusCode, 400, `comment, ${what}`)
      t.match(approve.json().error, { code: 'WRIT_ERR_UNSAFE_TEXT', field: 'comment', code_point: codePoint })
      const deny = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/deny`, headers: auth(fx.tokens.operator), payload: { reason: text, binding: run.approval.binding } })
      t.equal(deny.statusCode, 400, `deny reason, ${what}`)
      t.match(deny.json().error, { code: 'WRIT_ERR_UNSAFE_TEXT', field: 'reason', code_point: codePoint })
    }
    const still = (await app.writ.store.get(run.id))?.run
    t.match(still, { status: 'pending_approval', approval: { approvals: [] } }, 'the run is still waiting, with no approval and no denial')
    t.notOk(still?.approval?.denial)
    const onRun = (await rejected()).filter((e) => e.run_id === run.id).map((e) => (e.data as { code: string }).code)
    t.equal(onRun.length, HOSTILE.length * 2, 'every refused decision is on the run\'s record')
    t.ok(onRun.every((c) => c === 'WRIT_ERR_UNSAFE_TEXT'))
    t.equal(runner.writs.length, 0, 'nothing was dispatched')
  })
})
