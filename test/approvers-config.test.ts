/**
 * Configuring single sign-on and passkeys, and publishing the approver
 * registry, as an administrator meets it: every mistake is refused at boot or
 * by the CLI with a message naming the setting, and nothing is signed with
 * the wrong key.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, parseConfig, hashToken } from '@writ/control-plane'
import { generateSigningKeyPair, loadSigningKey, loadTrustedKey } from '@writ/packs/protocol'
import { signApproverRegistry, verifyApproverRegistry } from '@writ/packs/approvers'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { REPO_ROOT } from './helpers/runner-harness.js'

const CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')
function writ(args: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
    })
  })
}

t.test('principals for single sign-on: bad combinations are refused at parse time', async (t) => {
  const base = { packs: { dirs: ['/x'] }, signing: { key_file: '/k' } }
  t.throws(() => parseConfig({ ...base, principals: [{ id: 'ops', kind: 'operator', groups: [] }] }), /principals\.0: operator "ops" needs token_sha256, sso, or both/)
  t.throws(() => parseConfig({ ...base, principals: [{ id: 'bot', kind: 'agent', sso: 'bot@example.com', token_sha256: hashToken('x') }] }), /an agent signs in with a token/)
  t.throws(() => parseConfig({ ...base, principals: [{ id: 'a', kind: 'operator', sso: 'same@example.com' }, { id: 'b', kind: 'operator', sso: 'same@example.com' }] }), /principals\.1\.sso: "same@example\.com" is given to two operators/)
  t.throws(() => parseConfig({ ...base, portal: { oidc: { issuer: 'https://idp.example.com', client_id: 'w', scopes: ['email'] } } }), /portal\.oidc\.scopes must include "openid"/)
  t.throws(() => parseConfig({ ...base, passkeys: { registry_file: '/r.json' } }), /passkeys: set registry_file and approvers_key_file together/)
  t.ok(parseConfig({ ...base, principals: [{ id: 'alice', kind: 'operator', sso: 'alice@example.com' }] }), 'an operator with only sso is fine')
})

t.test('the control plane refuses a bad passkey or sign-on setup at boot, naming the setting', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  await t.rejects(buildApp(parseConfig({ ...fx.config, public_url: 'http://127.0.0.1:8480', passkeys: {} })), { message: /passkeys\.rp_id: "127\.0\.0\.1" is an IP address, and WebAuthn needs a host name/ })
  await t.rejects(buildApp(parseConfig({ ...fx.config, public_url: 'https://writ.example.com', passkeys: { origins: ['https://evil.example'] } })), { message: /passkeys\.origins: https:\/\/evil\.example is not on writ\.example\.com/ })
  await t.rejects(buildApp(parseConfig({ ...fx.config, portal: { ...fx.config.portal, oidc: { issuer: 'http://idp.example.com', client_id: 'w' } } })), { message: /portal\.oidc\.issuer must be an https URL/ })

  // A registry signed with the control plane's own dispatch key never loads.
  const approvers = generateSigningKeyPair()
  writeFileSync(join(fx.dir, 'approvers.pub.pem'), approvers.publicPem)
  const registry = { v: 1 as const, kind: 'writ.approver-registry' as const, issued_at: new Date().toISOString(), relying_party: { id: 'writ.example.com', origins: ['https://writ.example.com'] }, require: { min_risk: 'high' as const, default: { groups: ['oncall'], quorum: 1 }, rules: [] }, approvers: [] }
  writeFileSync(join(fx.dir, 'approvers.json'), JSON.stringify(signApproverRegistry(registry, loadSigningKey(readFileSync(fx.keyFile, 'utf8')))))
  const passkeys = { registry_file: join(fx.dir, 'approvers.json'), approvers_key_file: join(fx.dir, 'approvers.pub.pem') }
  await t.rejects(buildApp(parseConfig({ ...fx.config, public_url: 'https://writ.example.com', passkeys })), { name: 'ControlPlaneStartError', message: /signed with dispatch key [0-9a-f]{16} \(the control plane's writ-signing key\)/ })
  // And one whose bytes changed after signing.
  const good = signApproverRegistry(registry, loadSigningKey(approvers.privatePem))
  writeFileSync(join(fx.dir, 'approvers.json'), JSON.stringify({ ...good, registry: { ...good.registry, require: { ...good.registry.require, min_risk: 'critical' } } }))
  await t.rejects(buildApp(parseConfig({ ...fx.config, public_url: 'https://writ.example.com', passkeys })), { message: /has a bad signature/ })
})

t.test('writ approvers export: refuses the dispatch key and a bad policy, signs with the approvers key', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const port = await freePort()
  const app = await buildApp(parseConfig({ ...fx.config, listen: { host: '127.0.0.1', port }, public_url: `http://localhost:${port}` }))
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const env = { WRIT_URL: `http://127.0.0.1:${port}`, WRIT_TOKEN: fx.tokens.operator }
  const policy = join(fx.dir, 'policy.yaml')
  writeFileSync(policy, 'require:\n  default: { groups: [oncall] }\n')
  const out = join(fx.dir, 'approvers.json')

  const withDispatch = await writ(['approvers', 'export', '--key', fx.keyFile, '--policy', policy, '--out', out], env)
  t.equal(withDispatch.code, 2)
  t.match(withDispatch.stderr, /is the control plane's dispatch key .* must be signed with a separate approvers key kept offline/)

  const keys = await writ(['keys', 'approvers', '--out', fx.dir])
  t.equal(keys.code, 0)
  t.match(keys.stdout, /keep it offline, never on the control plane/)
  const again = await writ(['keys', 'approvers', '--out', fx.dir])
  t.equal(again.code, 2, 'an existing approvers key is never overwritten')

  writeFileSync(join(fx.dir, 'bad-policy.yaml'), 'require:\n  min_risk: extreme\n  default: { groups: [] }\n')
  const badPolicy = await writ(['approvers', 'export', '--key', join(fx.dir, 'writ-approvers.pem'), '--policy', join(fx.dir, 'bad-policy.yaml'), '--out', out], env)
  t.equal(badPolicy.code, 2)
  t.match(badPolicy.stderr, /require\.min_risk: .*; require\.default\.groups: name at least one approver group/)

  const agent = await writ(['approvers', 'list'], { ...env, WRIT_TOKEN: fx.tokens.agent })
  t.equal(agent.code, 2, 'agents do not read registrations')

  // Passkeys are not configured on this control plane: the first, empty registry is exported all the same.
  const ok = await writ(['approvers', 'export', '--key', join(fx.dir, 'writ-approvers.pem'), '--policy', policy, '--out', out], env)
  t.equal(ok.code, 0, ok.stderr)
  const registry = verifyApproverRegistry(readFileSync(out, 'utf8'), { approvers: [loadTrustedKey(readFileSync(join(fx.dir, 'writ-approvers.pub.pem'), 'utf8'))], dispatch: [loadTrustedKey(readFileSync(fx.publicKeyFile, 'utf8'))] })
  t.match(registry, { serial: 1, relying_party: { id: 'localhost', origins: [`http://localhost:${port}`] }, require: { default: { groups: ['oncall'], quorum: 1 } }, approvers: [] })
  t.equal(registry.require.min_risk, undefined, 'a policy without min_risk publishes the default gate (every state-changing action, and high risk and above)')
})
