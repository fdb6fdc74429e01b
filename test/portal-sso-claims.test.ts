/**
 * What single sign-on maps, against a real OpenID provider on loopback: an
 * email names an operator only when the provider says it verified it; the
 * provider's groups count only where `allowed_groups` lists them; and groups
 * are read again from the provider once older than `groups_max_age`, so a
 * group removed there stops granting approvals within that time.
 */
import t from 'tap'
import { buildApp, parseConfig, ConfigError, type AuditEvent } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { OIDC_CLIENT, startOidcProvider, type OidcUser } from './helpers/oidc-provider.js'
import { CookieJar, PortalVisitor } from './helpers/portal-visitor.js'

const BASE = 'http://127.0.0.1:8480'
const code = (html: string): string | undefined => /<strong>(WRIT_ERR_[A-Z_]+)<\/strong>/.exec(html)?.[1]

t.test('single sign-on maps only verified emails and allowed groups, and reads groups again', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  // Keyed by the login typed at the provider (its subject).
  const users: Record<string, OidcUser> = {
    carol: { email: 'carol@example.test', groups: ['oncall'] },
    // Accounts that merely claim carol's address: the provider never checked it.
    'eve-unverified': { email: 'carol@example.test', emailVerified: 'absent' },
    'eve-false': { email: 'carol@example.test', emailVerified: false },
    // break-glass is a group anyone can create at this provider; the config does not allow it.
    mallory: { email: 'mallory@example.test', groups: ['break-glass'] },
    alice: { email: 'alice@example.test', groups: ['oncall'] },
  }
  const idp = await startOidcProvider({ redirectUris: [`${BASE}/ui/sign-in/oidc/callback`], users })
  t.teardown(() => idp.close())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const input = {
    ...fx.config, public_url: BASE,
    principals: [
      ...fx.config.principals,
      { id: 'carol', kind: 'operator' as const, sso: 'carol@example.test', groups: [] },
      { id: 'mallory', kind: 'operator' as const, sso: 'mallory@example.test', groups: [] },
      { id: 'alice', kind: 'operator' as const, sso: 'alice@example.test', groups: [] },
    ],
    policy: { rules: [
      { name: 'restart-needs-a-person', match: { actions: ['testops.restart'] }, decision: 'require_approval' as const, approver_groups: ['oncall', 'break-glass'], quorum: 1, ttl: '15m' },
      { name: 'agents', match: { kinds: ['agent' as const] }, decision: 'allow' as const },
    ] },
    portal: {
      ...fx.config.portal,
      oidc: { issuer: idp.issuer, ...OIDC_CLIENT, scopes: ['openid', 'email', 'groups'], groups_claim: 'groups', allowed_groups: ['oncall'], groups_max_age: '15m', name: 'Example SSO' },
    },
  }
  const app = await buildApp(parseConfig(input))
  t.teardown(() => app.close())
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'host-s', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-s')?.online, 10_000, 'heartbeat')
  const gated = async (on = app): Promise<string> => {
    const res = await on.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'host-s', args: {}, reason: 'restart it' } })
    if (res.json().status !== 'pending_approval') throw new Error(`the run did not wait for approval: ${res.body}`)
    return res.json().id as string
  }
  const status = async (id: string): Promise<string> => (await app.writ.store.get(id))!.run.status

  await t.test('an email the provider never verified names nobody', async (t) => {
    for (const login of ['eve-unverified', 'eve-false']) {
      const eve = new PortalVisitor(app)
      const res = await eve.browse('/ui', { login, provider: new CookieJar() })
      t.equal(res.statusCode, 403, `${login}: refused`)
      t.match(res.body, 'Not an operator here')
      t.match(res.body, 'Example SSO has not verified the email carol@example.test')
      const after = await eve.get('/ui')
      t.equal(after.statusCode, 303, `${login}: nobody is signed in`)
    }
    const carol = new PortalVisitor(app)
    const page = await carol.browse('/ui', { login: 'carol', provider: new CookieJar() })
    t.equal(page.statusCode, 200, 'carol, whose address the provider verified, signs in')
    t.match(page.body, /Signed in as <strong>carol<\/strong>/)
  })

  await t.test('a group the config does not allow grants nothing, whatever the provider says', async (t) => {
    const id = await gated()
    const mallory = new PortalVisitor(app)
    const page = await mallory.browse(`/ui/runs/${id}`, { login: 'mallory', provider: new CookieJar() })
    t.equal(page.statusCode, 200)
    t.match(page.body, /Signed in as <strong>mallory<\/strong>/)
    t.match(page.body, 'you are not in those groups', 'the page offers mallory no decision')
    const res = await mallory.post(`/ui/runs/${id}/approve`, { _csrf: PortalVisitor.field(page.body, '_csrf'), binding: PortalVisitor.field(page.body, 'binding') || 'a'.repeat(64) })
    t.equal(res.statusCode, 403)
    t.equal(code(res.body), 'WRIT_ERR_NOT_AN_APPROVER', 'break-glass from the provider does not make mallory an approver')
    t.equal(await status(id), 'pending_approval')
    t.equal(runner.writs.length, 0, 'nothing dispatched')
  })

  await t.test('groups_claim without allowed_groups is refused at boot, naming the setting', async (t) => {
    const { allowed_groups: _, ...open } = input.portal.oidc
    let refused: unknown
    try { parseConfig({ ...input, portal: { ...input.portal, oidc: open } }) } catch (err) { refused = err }
    t.ok(refused instanceof ConfigError, 'a configuration error')
    t.match((refused as Error | undefined)?.message, /portal\.oidc\.allowed_groups: list the groups the provider may grant/)
  })

  await t.test('a group removed at the provider stops granting approvals within groups_max_age', async (t) => {
    const maxAgeMs = 4000
    const short = await buildApp(parseConfig({ ...input, portal: { ...input.portal, oidc: { ...input.portal.oidc, groups_max_age: `${maxAgeMs}ms` } } }))
    t.teardown(() => short.close())
    await eventually(() => short.writ.fleet.find('host-s')?.online, 10_000, 'the second app to hear the runner')
    const provider = new CookieJar()
    const alice = new PortalVisitor(short)
    const sso = { login: 'alice', provider }
    const first = await gated(short)
    const before = await alice.browse(`/ui/runs/${first}`, sso)
    t.match(before.body, /Signed in as <strong>alice<\/strong>/)
    t.notMatch(before.body, 'you are not in those groups', 'oncall from the provider makes alice an approver')
    t.match(PortalVisitor.field(before.body, 'binding'), /^[0-9a-f]{64}$/, 'the page offers her the decision')
    const groupsReadBy = Date.now()

    users.alice = { email: 'alice@example.test', groups: [] }
    await eventually(() => Date.now() > groupsReadBy + maxAgeMs + 100, maxAgeMs + 5000, 'groups_max_age to pass')
    const late = await alice.post(`/ui/runs/${first}/approve`, { _csrf: PortalVisitor.field(before.body, '_csrf'), binding: PortalVisitor.field(before.body, 'binding') })
    t.equal(late.statusCode, 401, 'the approval on groups older than groups_max_age is refused')
    t.equal(code(late.body), 'WRIT_ERR_GROUPS_EXPIRED')
    t.match(late.body, 'reload the page to sign in through Example SSO again')
    t.equal(await status(first), 'pending_approval', 'the run still waits')

    // Reloading the page goes back through the provider (its own session is alive: no password asked) and reads the groups again.
    const reloaded = await alice.browse(`/ui/runs/${first}`, sso)
    t.equal(reloaded.statusCode, 200)
    t.match(reloaded.body, /Signed in as <strong>alice<\/strong>/)
    t.match(reloaded.body, 'you are not in those groups', 'without oncall at the provider, alice is no approver any more')
    const again = await alice.post(`/ui/runs/${first}/approve`, { _csrf: PortalVisitor.field(reloaded.body, '_csrf'), binding: PortalVisitor.field(before.body, 'binding') })
    t.ok(['WRIT_ERR_NOT_AN_APPROVER', 'WRIT_ERR_GROUPS_EXPIRED'].includes(code(again.body) ?? ''), `refused (${code(again.body)})`)
    t.equal(await status(first), 'pending_approval', 'still waiting')
    t.equal(runner.writs.length, 0, 'nothing dispatched')

    const audit = await short.inject({ method: 'GET', url: `/v1/audit?run_id=${first}`, headers: auth(fx.tokens.operator) })
    const rejected = audit.body.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent).filter((e) => e.type === 'request.rejected')
    const who = rejected.map((e) => `${e.actor?.id}:${(e.data as { code: string }).code}`)
    t.ok(who.includes('alice:WRIT_ERR_GROUPS_EXPIRED'), `the refusal is on the record, with who tried (${who.join(', ')})`)
  })
})
