/**
 * The control plane and the approver registry over time: it records the
 * newest registry it accepted in JetStream, so an instance restarted over a
 * registry file rolled back to an older one keeps the newer one and refuses
 * a passkey it revoked; an expired registry is refused at start and on
 * reload; `writ approvers export` mints the serial after the control plane's;
 * and `GET /v1/nodes` and the Nodes page flag a runner still holding an
 * older registry.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { buildApp, parseConfig, type Config } from '@writ/control-plane'
import { generateSigningKeyPair, loadSigningKey } from '@writ/packs/protocol'
import { bindingChallenge, signApproverRegistry } from '@writ/packs/approvers'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture, type CpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { REPO_ROOT } from './helpers/runner-harness.js'
import { registrationsFile, registryOf, testApprover, type TestApprover } from './helpers/approver-registry.js'

const pexec = promisify(execFile)
const WRIT_CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')
type App = Awaited<ReturnType<typeof buildApp>>

const ops1 = testApprover('ops-1', ['oncall'])
const ops2 = testApprover('ops-2', ['oncall'])

interface Setup { fx: CpFixture, config: Config, registryFile: string, exportTo(people: TestApprover[], out?: string, env?: Record<string, string>): Promise<string> }

async function setup(t: { teardown(fn: () => unknown): void }, port = 0): Promise<Setup> {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const approvers = generateSigningKeyPair()
  writeFileSync(join(fx.dir, 'approvers.pem'), approvers.privatePem, { mode: 0o600 })
  writeFileSync(join(fx.dir, 'approvers.pub.pem'), approvers.publicPem)
  writeFileSync(join(fx.dir, 'policy.yaml'), 'require:\n  default: { groups: [oncall], quorum: 1 }\n')
  const registryFile = join(fx.dir, 'approvers.json')
  const config = parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: `http://localhost:${port || 8480}`,
    passkeys: { registry_file: registryFile, approvers_key_file: join(fx.dir, 'approvers.pub.pem'), reload_interval: '100ms' },
    policy: { rules: [
      { name: 'restart-needs-a-person', match: { actions: ['testops.restart'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
      { name: 'agents', match: { kinds: ['agent'] }, decision: 'allow' },
    ] },
  })
  /** `writ approvers export`: offline from `people`'s registrations, or (with env) from the running control plane. */
  const exportTo = async (people: TestApprover[], out = registryFile, env?: Record<string, string>): Promise<string> => {
    const args = ['approvers', 'export', '--key', join(fx.dir, 'approvers.pem'), '--policy', join(fx.dir, 'policy.yaml'), '--out', out]
    if (!env) {
      registrationsFile(join(fx.dir, 'registrations.json'), people, loadSigningKey(readFileSync(fx.keyFile, 'utf8')).keyId)
      args.push('--from', join(fx.dir, 'registrations.json'))
    }
    return (await pexec(process.execPath, [WRIT_CLI, ...args], { env: { ...process.env, ...env } })).stdout
  }
  return { fx, config, registryFile, exportTo }
}

function writeBack(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}

async function requestRestart(app: App, fx: CpFixture): Promise<{ id: string, approval: { binding: string, passkey_required?: boolean } }> {
  const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'host-p', args: {}, reason: 'the service leaks memory' } })
  return res.json()
}
async function approveWithPasskey(app: App, token: string, who: TestApprover, run: { id: string, approval: { binding: string } }) {
  const res = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/approve`, headers: auth(token), payload: { passkey: who.passkey.assert(bindingChallenge(run.approval.binding)) } })
  return { status: res.statusCode, body: res.json() as { status?: string, error?: { code: string, message: string } } }
}

t.test('a control plane restarted over a rolled-back registry keeps the newest it accepted, and ops-2\'s revoked passkey approves nothing', async (t) => {
  const s = await setup(t)
  await s.exportTo([ops1, ops2])
  const r1 = readFileSync(s.registryFile, 'utf8')
  let app = await buildApp(s.config)
  const runner = await startFakeRunner({ natsUrl: s.fx.config.nats.servers[0] as string, nodeId: 'host-p', packDirs: s.fx.config.packs.dirs, publicKeyFile: s.fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-p')?.online, 10_000, 'heartbeat')
  await eventually(() => app.writ.passkeys?.registry?.approvers.length === 2, 10_000, 'R1 in force')

  await s.exportTo([ops1])
  await eventually(() => app.writ.passkeys?.registry?.approvers.length === 1, 10_000, 'the control plane to load R2')
  await app.close()
  writeBack(s.registryFile, r1)

  app = await buildApp(s.config)
  t.teardown(() => app.close())
  await eventually(() => app.writ.fleet.find('host-p')?.online, 10_000, 'heartbeat after the restart')
  const run = await requestRestart(app, s.fx)
  t.equal(run.approval.passkey_required, true, 'the restart waits for a passkey-signed approval')
  const byOps2 = await approveWithPasskey(app, s.fx.tokens.operator2, ops2, run)
  t.equal(byOps2.status, 403, 'after the restart, ops-2\'s revoked passkey approves nothing')
  t.equal(byOps2.body.error?.code, 'WRIT_ERR_PASSKEY_REJECTED', byOps2.body.error?.message ?? 'refused')
  t.match(byOps2.body.error?.message, /not in the published approver registry/)
  t.equal((await app.writ.store.get(run.id))?.run.status, 'pending_approval', 'nothing was recorded')
  t.equal(app.writ.passkeys?.registry?.approvers.length, 1, 'R2 stays in force over R1 on disk')
  t.equal(app.writ.passkeys?.mark?.serial, 2)

  const byOps1 = await approveWithPasskey(app, s.fx.tokens.operator, ops1, run)
  t.equal(byOps1.status, 200, 'ops-1, still published, approves')
  t.comment(`control plane after the restart, ops-2 approving: ${byOps2.body.error?.code}: ${byOps2.body.error?.message}`)
})

t.test('an expired registry is refused at start and on reload, and the control plane says why', async (t) => {
  const s = await setup(t)
  const require = { default: { groups: ['oncall'], quorum: 1 }, rules: [] }
  const expired = signApproverRegistry({ ...registryOf([ops1], require, new Date(Date.now() - 7200_000)), serial: 7, expires_at: new Date(Date.now() - 3600_000).toISOString() }, loadSigningKey(readFileSync(join(s.fx.dir, 'approvers.pem'), 'utf8')))
  writeBack(s.registryFile, JSON.stringify(expired))
  await t.rejects(buildApp(s.config), { name: 'ControlPlaneStartError', message: /approver registry .*approvers\.json refused: it expired at .*publish a new one/ }, 'the boot stops with the reason')

  await s.exportTo([ops1])
  const lines: string[] = []
  const app = await buildApp(s.config, { logger: pino({ level: 'info' }, { write: (l: string) => { lines.push(l) } }) })
  t.teardown(() => app.close())
  t.equal(app.writ.passkeys?.mark?.serial, 8, 'the export minted the serial after the file it replaced')
  writeBack(s.registryFile, JSON.stringify(signApproverRegistry({ ...registryOf([ops1, ops2], require, new Date(Date.now() - 2000)), serial: 9, expires_at: new Date(Date.now() - 1000).toISOString() }, loadSigningKey(readFileSync(join(s.fx.dir, 'approvers.pem'), 'utf8')))))
  const refused = await eventually(() => lines.find((l) => l.includes('approver registry replacement refused')), 10_000, 'the reload to be refused')
  t.match(refused, /serial 8 .* stays in force: it expired at/)
  t.equal(app.writ.passkeys?.mark?.serial, 8, 'the registry in force stays')
})

t.test('writ approvers export mints the serial after the control plane\'s; GET /v1/nodes and the Nodes page flag a runner behind', async (t) => {
  const port = await freePort()
  const s = await setup(t, port)
  await s.exportTo([ops1, ops2])
  const r1 = readFileSync(s.registryFile, 'utf8')
  await s.exportTo([ops1])
  const app = await buildApp(s.config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  t.equal(app.writ.passkeys?.mark?.serial, 2)

  // A runner whose registry file was never updated past R1.
  writeFileSync(join(s.fx.dir, 'stale-approvers.json'), r1)
  const stale = await startRealRunner(s.fx, s.fx.config.nats.servers[0] as string, 'host-stale', {
    approversRegistry: join(s.fx.dir, 'stale-approvers.json'), approversKeys: [join(s.fx.dir, 'approvers.pub.pem')],
  })
  t.teardown(() => stale.close())
  const current = await startRealRunner(s.fx, s.fx.config.nats.servers[0] as string, 'host-current', {
    approversRegistry: s.registryFile, approversKeys: [join(s.fx.dir, 'approvers.pub.pem')],
  })
  t.teardown(() => current.close())
  const nodes = await eventually(async () => {
    const list = (await app.inject({ method: 'GET', url: '/v1/nodes', headers: auth(s.fx.tokens.operator) })).json().nodes as Array<{ name: string, approver_registry?: { serial: number }, approver_registry_standing: string }>
    return list.length === 2 && list.every((n) => n.approver_registry) ? list : undefined
  }, 10_000, 'both runners to report their registry')
  t.match(nodes.find((n) => n.name === 'host-stale'), { approver_registry: { serial: 1 }, approver_registry_standing: 'behind' })
  t.match(nodes.find((n) => n.name === 'host-current'), { approver_registry: { serial: 2 }, approver_registry_standing: 'current' })

  const cookie = await signIn(app, s.fx.tokens.operator)
  const page = await app.inject({ method: 'GET', url: '/ui/nodes', headers: { cookie } })
  t.equal(page.statusCode, 200)
  const row = (name: string): string => new RegExp(`<tr><td><strong>${name}</strong>.*?</tr>`, 's').exec(page.body)?.[0] ?? ''
  t.match(row('host-stale'), /serial 1 · [0-9a-f]{12}….*behind: the control plane&#39;s is serial 2/s, 'the Nodes page flags the stale runner')
  t.notMatch(row('host-current'), /behind/, 'and not the current one')
  t.match(page.body, /The control plane's approver registry: serial 2/)

  // The administrator exports from the control plane itself into a new file: the serial follows the control plane's.
  const out = join(s.fx.dir, 'next-approvers.json')
  const printed = await s.exportTo([], out, { WRIT_URL: `http://127.0.0.1:${port}`, WRIT_TOKEN: s.fx.tokens.operator2 })
  t.equal(JSON.parse(readFileSync(out, 'utf8')).registry.serial, 3, 'serial 3: after the control plane\'s 2, though the new file replaces nothing')
  t.match(printed, /approver registry serial 3 written to/)
})

/** Signs in on the portal with an operator token (CSRF form), returning the session cookie. */
async function signIn(app: App, token: string): Promise<string> {
  const page = await app.inject({ method: 'GET', url: '/ui/sign-in' })
  const cookie = String(page.headers['set-cookie'] ?? '').split(';')[0] as string
  const csrf = /name="_csrf" value="([^"]*)"/.exec(page.body)?.[1] ?? ''
  const res = await app.inject({
    method: 'POST', url: '/ui/sign-in', payload: new URLSearchParams({ _csrf: csrf, token, next: '/ui' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
  })
  if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode}`)
  const set = res.headers['set-cookie']
  return String(Array.isArray(set) ? set[0] : set ?? cookie).split(';')[0] as string
}
