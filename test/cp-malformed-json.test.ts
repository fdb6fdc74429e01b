/**
 * A broken JSON body is refused by position only: a secret in it is never
 * echoed in the answer, written to the log, or kept in the audit chain
 * (Node's parser message quotes a slice of the body, so it is never used).
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { buildApp, createLogger } from '@writ/control-plane'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { startNatsServer } from './helpers/nats-server.js'

const SECRET = 'hunter2-Sup3rSecret-Value'

t.test('a secret in a broken body is absent from the answer, the log and the audit', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { log: { level: 'trace' } })
  t.teardown(() => fx.cleanup())
  let logged = ''
  const sink = new Writable({ write(chunk, _enc, cb) { logged += chunk.toString(); cb() } })
  const app = await buildApp(fx.config, { logger: createLogger(fx.config, sink) })
  t.teardown(() => app.close())

  const bodies = [
    `{"action": "testops.login", "args": {"password": "${SECRET}" oops}}`,
    `{"action": "testops.login", "args": {"password": "${SECRET}",}}`,
    `${SECRET} is not json`,
    `{"action": "testops.login",\n "args": {"password": "${SECRET}"`,
  ]
  for (const body of bodies) {
    const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json' }, payload: body })
    t.equal(res.statusCode, 400)
    t.equal(res.json().error.code, 'WRIT_ERR_MALFORMED_JSON')
    t.notMatch(res.body, SECRET, 'the answer does not echo the body')
    t.notMatch(res.body, /hunter2|Sup3r/, 'not even a slice of it')
    t.match(res.json().error.message, /request body is not valid JSON: it (breaks at character \d+ \(line \d+, column \d+\)|ends before the JSON is complete)/, res.json().error.message)
  }
  const first = await app.inject({ method: 'POST', url: '/v1/runs', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json' }, payload: bodies[0] })
  t.equal(first.json().error.message, `request body is not valid JSON: it breaks at character ${bodies[0]!.indexOf(' oops') + 2} (line 1, column ${bodies[0]!.indexOf(' oops') + 2})`, 'the position is the character the parser stopped at')

  const audit = await app.inject({ method: 'GET', url: '/v1/audit', headers: auth(fx.tokens.operator) })
  const rejected = audit.body.trim().split('\n').filter((l) => l.includes('WRIT_ERR_MALFORMED_JSON'))
  t.equal(rejected.length, bodies.length + 1, 'each refusal is audited')
  t.notMatch(audit.body, /hunter2|Sup3r/, 'the audit chain holds nothing of the bodies')
  t.ok(logged.includes('WRIT_ERR_MALFORMED_JSON'), 'the refusals are logged')
  t.notMatch(logged, /hunter2|Sup3r/, 'the log holds nothing of the bodies')
})
