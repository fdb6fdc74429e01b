/**
 * Deciding from a terminal, as an operator does it: `writ pending` shows what
 * would run — arguments (sensitive ones redacted), options, binding prefix —
 * and no text from elsewhere can drive the terminal (a node names itself in
 * its heartbeat; records from before free text was checked still exist);
 * `writ approve` prints the run it approves and sends the binding it printed,
 * and `--binding` pins the one the operator read, so another run is refused.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'control-plane', 'dist', 'cli.js')
/** Cursor up, erase the line, carriage return: then a harmless-looking line in place of the real one. */
const ESCAPES = '\u001b[1A\u001b[2K\r'
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

function writ(args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, WRIT_TOKEN: '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr })
    })
  })
}

/** A pass-through in front of the control plane that records every request body the CLI sends. */
async function recordingProxy(target: string): Promise<{ url: string, posts: Array<{ path: string, body: Record<string, unknown> }>, server: Server }> {
  const posts: Array<{ path: string, body: Record<string, unknown> }> = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      if (req.method === 'POST') posts.push({ path: req.url ?? '', body: JSON.parse(body || '{}') as Record<string, unknown> })
      const headers: Record<string, string> = {}
      for (const h of ['authorization', 'content-type']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h] as string
      void fetch(new URL(req.url ?? '/', target), { method: req.method, headers, ...(body ? { body } : {}) }).then(async (answer) => {
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' })
        res.end(await answer.text())
      })
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const address = server.address() as { port: number }
  return { url: `http://127.0.0.1:${address.port}`, posts, server }
}

t.test('writ pending and writ approve: what the operator reads is what is approved', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  // A runner may call its node anything in its heartbeat.
  const hostile = await startFakeRunner({ natsUrl: nats.url, nodeId: 'web-2', nodeName: `web-2${ESCAPES}debugging.loadavg on web-9`, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => hostile.close())
  await eventually(() => app.writ.fleet.find('web-1')?.online && app.writ.fleet.find('web-2')?.online, 5000, 'nodes online')
  const request = async (payload: Record<string, unknown>) => {
    const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { node: 'web-1', args: {}, ...payload } })
    t.equal(res.statusCode, 202, res.body)
    return res.json() as { id: string, approval: { binding: string } }
  }
  const unlock = await request({ action: 'testops.unlock', args: { vault: 'payroll', pin: '4821' }, reason: 'unlock payroll for the audit', expected: 'the vault opens', options: { timeout_ms: 2000 } })
  const restart = await request({ action: 'testops.restart', node: 'web-2', reason: 'restart the worker' })
  // A record stored before free text was checked: its reason still carries escapes.
  await app.writ.store.update(restart.id, (r) => ({ ...r, reason: `restart the worker${ESCAPES}    reason:   read the load average` }))
  const env = { WRIT_URL: url, WRIT_OPERATOR_TOKEN: fx.tokens.operator }

  await t.test('writ pending shows arguments, options and the binding; nothing in it drives the terminal', async (t) => {
    const pending = await writ(['pending'], env)
    t.equal(pending.code, 0, pending.stderr)
    t.notMatch(pending.stdout, RAW_CONTROL, 'no control, line-separator or bidi character reaches the terminal')
    // The line is the run's summary (an action without one: its title, node and arguments, redacted), then what it is and why.
    t.match(pending.stdout, `${unlock.id}  Unlock a vault with its pin (pretend) on web-1 (vault=payroll, pin=[redacted])  0/1 approvals`)
    t.match(pending.stdout, '    action:   testops.unlock on web-1 (high risk), requested by agent-1\n')
    t.match(pending.stdout, '    args:     vault=payroll  pin=[redacted]\n', 'the arguments, the sensitive one redacted')
    t.match(pending.stdout, '    options:  timeout_ms=2000\n')
    t.match(pending.stdout, `    binding:  ${unlock.approval.binding.slice(0, 16)}…\n`)
    t.match(pending.stdout, '    expected: the vault opens\n')
    t.notMatch(pending.stdout, '4821')
    t.match(pending.stdout, `    action:   testops.restart on web-2\\u001B[1A\\u001B[2K\\u000Ddebugging.loadavg on web-9 (high risk)`, 'a node name is shown with its escapes visible')
    t.match(pending.stdout, `${restart.id}  Restart a service (pretend) on web-2\\u001B[1A\\u001B[2K\\u000Ddebugging.loadavg on web-9  `, 'in the summary too')
    t.match(pending.stdout, '    reason:   restart the worker\\u001B[1A\\u001B[2K\\u000D    reason:   read the load average\n', 'so is an old reason')
    t.match(pending.stdout, '    args:     none\n')

    const json = await writ(['pending', '--json'], env)
    t.notMatch(json.stdout, RAW_CONTROL, '--json escapes them too')
    const listed = JSON.parse(json.stdout) as Array<{ id: string, node_name: string, args: Record<string, unknown> }>
    t.equal(listed.find((r) => r.id === restart.id)?.node_name, `web-2${ESCAPES}debugging.loadavg on web-9`, 'and still parses to the exact value')
    t.same(listed.find((r) => r.id === unlock.id)?.args, { vault: 'payroll', pin: '[redacted]' })
  })

  await t.test('writ approve prints the run and sends the binding it printed; --binding refuses another run', async (t) => {
    const proxy = await recordingProxy(url)
    t.teardown(() => new Promise<void>((r) => proxy.server.close(() => r())))
    const via = { ...env, WRIT_URL: proxy.url }

    const wrongRun = await writ(['approve', restart.id, '--binding', unlock.approval.binding.slice(0, 16)], via)
    t.equal(wrongRun.code, 2)
    t.match(wrongRun.stderr, new RegExp(`WRIT_ERR_BINDING_MISMATCH: run "${restart.id}" is bound to ${restart.approval.binding.slice(0, 16)}…, not to the ${unlock.approval.binding.slice(0, 16)}… you pinned`))
    t.equal(proxy.posts.length, 0, 'nothing was sent')
    const tooShort = await writ(['approve', restart.id, '--binding', 'abc'], via)
    t.equal(tooShort.code, 2)
    t.match(tooShort.stderr, /--binding takes the run's binding digest or a prefix of it \(at least 8 hex characters/)

    const forged = await writ(['approve', restart.id, '--binding', 'f'.repeat(64)], via)
    t.equal(forged.code, 2)
    t.match(forged.stderr, /WRIT_ERR_BINDING_MISMATCH: the decision names binding ffffffffffffffff/, 'a full digest goes to the control plane, which refuses it')
    t.same(proxy.posts.map((p) => p.body.binding), ['f'.repeat(64)])
    const audit = await app.inject({ method: 'GET', url: `/v1/audit?run_id=${restart.id}&type=request.rejected`, headers: auth(fx.tokens.operator) })
    t.match(audit.body.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent), [{ actor: { id: 'ops-1' }, data: { code: 'WRIT_ERR_BINDING_MISMATCH' } }], 'and audits it')
    t.equal((await app.writ.store.get(restart.id))?.run.status, 'pending_approval', 'the run still waits')

    const approved = await writ(['approve', unlock.id, '--binding', unlock.approval.binding.slice(0, 12).toUpperCase(), '--comment', 'audit window'], via)
    t.equal(approved.code, 0, approved.stderr)
    t.match(approved.stderr, `approving run ${unlock.id}: Unlock a vault with its pin (pretend) on web-1 (vault=payroll, pin=[redacted])\n`, 'it says what it approves')
    t.match(approved.stderr, '    action:   testops.unlock on web-1 (high risk), requested by agent-1\n')
    t.notMatch(approved.stderr, '[y/N]', 'not on a terminal: it asks nothing')
    t.match(approved.stderr, '    args:     vault=payroll  pin=[redacted]\n')
    t.match(approved.stderr, `    binding:  ${unlock.approval.binding.slice(0, 16)}…\n`)
    t.same(proxy.posts.at(-1), { path: `/v1/runs/${unlock.id}/approve`, body: { binding: unlock.approval.binding, comment: 'audit window' } }, 'and sends the whole binding it printed')
    t.match(approved.stdout, `run ${unlock.id}: `)
    await eventually(() => runner.writs.some((w) => w.writ.run_id === unlock.id), 5000, 'the approved run to be dispatched')

    const denied = await writ(['deny', restart.id, '--reason', 'not this one'], via)
    t.equal(denied.code, 0, denied.stderr)
    t.match(denied.stderr, `denying run ${restart.id}: Restart a service (pretend) on web-2\\u001B[1A`, 'deny prints the run, escaped, too')
    t.same(proxy.posts.at(-1)?.body, { binding: restart.approval.binding, reason: 'not this one' }, 'with no --binding it sends the binding it printed')
    t.match(denied.stdout, `run ${restart.id}: denied — denied by ops-1: not this one`)
    t.equal(hostile.writs.length, 0, 'nothing reached the hostile node')
  })

  await t.test('writ status shows an old status reason with its escapes visible', async (t) => {
    await app.writ.store.update(restart.id, (r) => ({ ...r, status_reason: `denied by ops-1: no${ESCAPES}approved by ops-1` }))
    const status = await writ(['status', restart.id], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.operator })
    t.notMatch(status.stdout, RAW_CONTROL)
    t.equal(status.stdout, `run ${restart.id}: denied — denied by ops-1: no\\u001B[1A\\u001B[2K\\u000Dapproved by ops-1\n`)
    const json = await writ(['status', restart.id, '--json'], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.operator })
    t.notMatch(json.stdout, RAW_CONTROL)
    t.equal(JSON.parse(json.stdout).status_reason, `denied by ops-1: no${ESCAPES}approved by ops-1`)
  })
})
