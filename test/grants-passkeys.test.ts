/**
 * Where the approver registry demands passkey-signed approvals for an action,
 * a standing grant for it is refused with a typed error (grants do not carry
 * passkey assertions yet), nothing stored: such actions stay approved run by
 * run, with each approver's passkey over the run's own binding.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { buildApp, parseConfig } from '@writ/control-plane'
import { generateSigningKeyPair, loadSigningKey } from '@writ/packs/protocol'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { REPO_ROOT } from './helpers/runner-harness.js'
import { registrationsFile, testApprover } from './helpers/approver-registry.js'

const pexec = promisify(execFile)
const WRIT_CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')

t.test('no standing grant for an action the approver registry gates with passkeys', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const approvers = generateSigningKeyPair()
  writeFileSync(join(fx.dir, 'approvers.pem'), approvers.privatePem, { mode: 0o600 })
  writeFileSync(join(fx.dir, 'approvers.pub.pem'), approvers.publicPem)
  writeFileSync(join(fx.dir, 'policy.yaml'), 'require:\n  default: { groups: [oncall], quorum: 1 }\n')
  const registryFile = join(fx.dir, 'approvers.json')
  registrationsFile(join(fx.dir, 'registrations.json'), [testApprover('ops-1', ['oncall'])], loadSigningKey(readFileSync(fx.keyFile, 'utf8')).keyId)
  await pexec(process.execPath, [WRIT_CLI, 'approvers', 'export', '--key', join(fx.dir, 'approvers.pem'), '--policy', join(fx.dir, 'policy.yaml'), '--out', registryFile, '--from', join(fx.dir, 'registrations.json')])
  const app = await buildApp(parseConfig({
    ...fx.config, public_url: 'http://localhost:8480', passkeys: { registry_file: registryFile, approvers_key_file: join(fx.dir, 'approvers.pub.pem'), reload_interval: '1s' },
  }))
  t.teardown(() => app.close())

  const res = await app.inject({
    method: 'POST', url: '/v1/grants', headers: auth(fx.tokens.operator),
    payload: { principal: 'agent-1', action: 'testops.restart', node: '*', args: 'any', expires_in: '1h', reason: 'incident 4711' },
  })
  t.equal(res.statusCode, 409)
  t.match(res.json(), { error: { code: 'WRIT_ERR_GRANT_NEEDS_PASSKEY', message: /approved run by run/ } })
  t.comment(`bad grant (passkey-gated action) → ${res.statusCode} ${res.json().error.code}`)
  const listed = await app.inject({ method: 'GET', url: '/v1/grants', headers: auth(fx.tokens.operator) })
  t.same(listed.json(), { grants: [] }, 'nothing stored')
})
