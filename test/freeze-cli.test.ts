/**
 * `writ freeze --reason …`, `writ freezes`, `writ unfreeze` as an operator
 * types them, and as an agent's token is refused: the process, its exit code
 * and what it prints; the freeze takes effect on the API at once.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'control-plane', 'dist', 'cli.js')

function writ(args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, WRIT_TOKEN: '', WRIT_OPERATOR_TOKEN: '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr })
    })
  })
}

t.test('an operator freezes and unfreezes from the terminal; an agent cannot', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'n1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 5 })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.onlineCount === 1, 5000, 'n1 online')
  const operator = { WRIT_URL: url, WRIT_OPERATOR_TOKEN: fx.tokens.operator }
  const mutate = () => app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.sleep', node: 'n1', args: { seconds: 0 }, reason: 'cli test', wait: 10 } })

  const noReason = await writ(['freeze'], operator)
  t.equal(noReason.code, 2, 'a freeze without a reason is a usage error')
  t.match(noReason.stderr, /writ freeze --reason "why"/)

  const byAgent = await writ(['freeze', '--reason', 'let me'], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.agent })
  t.equal(byAgent.code, 2)
  t.match(byAgent.stderr, /WRIT_ERR_FORBIDDEN: only operators freeze/)
  t.equal(app.writ.brakes.freezes.length, 0, 'nothing frozen')

  const frozen = await writ(['freeze', '--reason', 'db failover in progress'], operator)
  t.equal(frozen.code, 0, frozen.stderr)
  t.match(frozen.stdout, /^frozen — every agent: frozen by ops-1 at .*: db failover in progress/)
  t.comment(`$ writ freeze --reason "db failover in progress"\n${frozen.stdout}`)
  const refused = await eventually(async () => { const r = await mutate(); return r.statusCode === 423 ? r : undefined }, 1000, 'the freeze in force')
  t.equal(refused.json().error.code, 'WRIT_ERR_FROZEN')

  const listed = await writ(['freezes'], operator)
  t.match(listed.stdout, /every agent: frozen by ops-1 .*db failover in progress/)
  const listedJson = await writ(['freezes', '--json'], operator)
  t.match(JSON.parse(listedJson.stdout), [{ scope: 'agents', by: 'ops-1', reason: 'db failover in progress' }])

  const wrongScope = await writ(['unfreeze', '--scope', 'agent-2'], operator)
  t.equal(wrongScope.code, 2)
  t.match(wrongScope.stderr, /WRIT_ERR_NOT_FROZEN/)

  const lifted = await writ(['unfreeze'], operator)
  t.equal(lifted.code, 0, lifted.stderr)
  t.match(lifted.stdout, /^unfrozen — was every agent: frozen by ops-1 .*db failover in progress/)
  t.comment(`$ writ unfreeze\n${lifted.stdout}`)
  const ok = await eventually(async () => { const r = await mutate(); return r.statusCode === 200 ? r : undefined }, 1000, 'the freeze lifted')
  t.equal(ok.json().status, 'succeeded')
})
