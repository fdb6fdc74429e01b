/**
 * The incident writ exists for, replayed end to end through its front door.
 *
 * A drain moved VictoriaMetrics; the CSI node plugin probed the multipath
 * device while no path was active, read "empty", and ran mkfs over the live
 * LUN. An agent, over MCP with the official SDK client, investigates with
 * declared actions only — the CSI mount tree, the kernel log, the plugin's
 * container log — in one session, then asks to stop the allocation, citing
 * those runs. An operator opens the link in a real browser, sees the evidence
 * and the impact preview, approves. Nomad receives exactly one stop; the audit
 * trail holds every step and verifies.
 *
 * Real: NATS, the control plane, the node-runner, dmesg, the browser. Doubles:
 * the Nomad HTTP API and the Docker Engine API (fixture wire formats). The
 * CSI root is a directory laid out as the Nomad client lays it out; the
 * runner reads a kernel log built from real lines (helpers/kernel-log.ts).
 *
 * Writes test/artifacts/incident-transcript.md and incident-audit.jsonl.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { startNatsServer, freePort } from './helpers/nats-server.js'
import { auth, makeCpFixture, runnerJournalPath } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { REPO_ROOT, STOCK_PACKS } from './helpers/runner-harness.js'
import { allocationLike, startNomadDouble } from './doubles/nomad-api.js'
import { startDockerDouble, type LogFrame } from './doubles/docker-api.js'
import { artifactsDir, launchBrowser, signInWithToken } from './helpers/browser.js'
import { incidentKernelLog } from './helpers/kernel-log.js'
import { connectMcp, type ToolAnswer } from './helpers/mcp-client.js'

const NODE = 'nomad-client-3'
const ALLOC = '6c1f4d2e-8a9b-4c3d-9e0f-a1b2c3d4e5f6'
const PLUGIN_ALLOC = '0f9e8d7c-6b5a-4948-8372-615243342516'
const PLUGIN = 'org.democratic-csi.iscsi'
const VOLUME = 'vmstorage-data-0'
const USAGE = 'rw-file-system-single-node-writer'
const SESSION = 'incident-vm-wipe'
const CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')

/**
 * The Nomad client's CSI directory as the seed's node had it: the plugin's
 * socket, the volume's staging mount and its per-alloc bind mount, each
 * holding only the `lost+found` a fresh mkfs makes, made minutes ago.
 */
async function layOutCsiRoot(root: string): Promise<{ close(): Promise<void> }> {
  const plugin = join(root, 'node', PLUGIN)
  const madeAt = new Date(Date.now() - 4 * 60_000)
  for (const mount of [join(plugin, 'staging', 'default', VOLUME, USAGE), join(plugin, 'per-alloc', ALLOC, VOLUME, USAGE)]) {
    mkdirSync(join(mount, 'lost+found'), { recursive: true, mode: 0o700 })
    utimesSync(join(mount, 'lost+found'), madeAt, madeAt)
    utimesSync(mount, madeAt, madeAt)
  }
  const socket: Server = createServer()
  await new Promise<void>((resolve) => socket.listen(join(plugin, 'csi.sock'), resolve))
  return { close: () => new Promise((resolve) => socket.close(() => resolve())) }
}

/** The plugin container's log around the wipe (democratic-csi's own format for the mkfs line). */
function pluginLog(): LogFrame[] {
  return [
    `NodeStageVolume: volume ${VOLUME}, device /dev/dm-5 (multipath), staging at /csi/staging/default/${VOLUME}/${USAGE}`,
    'blkid output empty for /dev/dm-5 (exit code 2)',
    'Disk appears unformatted; running mkfs.ext4',
    'executing filesystem command: mkfs.ext4 -m 0 /dev/dm-5',
    `mounted /dev/dm-5 at /csi/staging/default/${VOLUME}/${USAGE}`,
  ].map((line) => ({ stream: 1, payload: Buffer.from(`${line}\n`) }))
}

t.test('the incident, end to end: investigate over MCP, a person approves in the browser, one stop, on the record', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  // The node's Nomad data_dir: the runner's --nomad-data-dir, which csi_volume_ls lists <data_dir>/client/csi of.
  const nomadDataDir = join(fx.dir, 'nomad-data')
  const csiRoot = join(nomadDataDir, 'client', 'csi')
  const csi = await layOutCsiRoot(csiRoot)
  t.teardown(() => csi.close())
  const kernelLog = join(fx.dir, 'kmsg.log')
  writeFileSync(kernelLog, incidentKernelLog())
  const nomad = await startNomadDouble({
    extraAllocs: [allocationLike({
      id: ALLOC, nodeId: NODE, jobId: 'victoria-metrics', taskGroup: 'storage',
      volumes: { data: { Name: 'data', Type: 'csi', Source: VOLUME, ReadOnly: false, AccessMode: 'single-node-writer', AttachmentMode: 'file-system' } },
    })],
  })
  t.teardown(() => nomad.close())
  const docker = await startDockerDouble({
    extraContainers: [{ Id: 'd1e2f3a4b5c6'.padEnd(64, '0'), Names: [`/plugin-${PLUGIN_ALLOC}`], Image: 'docker.io/democraticcsi/democratic-csi:latest', State: 'running', logFrames: pluginLog() }],
  })
  t.teardown(() => docker.close())

  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const packs = STOCK_PACKS
  const config = parseConfig({ ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base, packs: { dirs: [packs] } })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runner = await startRealRunner(fx, nats.url, NODE, { packDirs: [packs], nomadAddr: nomad.addr, dockerSocket: docker.socketPath, kernelLogFile: kernelLog, nomadDataDir })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')

  const transcript: string[] = [`# The incident over MCP — ${new Date().toISOString()}`, '', `Agent \`agent-1\` over MCP (official SDK client, Streamable HTTP) at ${base}/mcp; session \`${SESSION}\`.`, '']
  const agent = await connectMcp(base, fx.tokens.agent)
  t.teardown(() => agent.close())
  transcript.push(`Connected: ${agent.client.getServerVersion()?.name} ${agent.client.getServerVersion()?.version}, protocol ${agent.transport.protocolVersion}.`, '')
  let step = 0
  const call = async (tool: string, args: Record<string, unknown>, summary: (a: ToolAnswer) => string): Promise<ToolAnswer> => {
    const answer = await agent.call(tool, args)
    transcript.push(`${++step}. \`${tool}\` ${JSON.stringify(args)}`, `   → **${answer.value.status ?? 'ok'}**${answer.isError ? ' (error)' : ''}: ${summary(answer)}`, '')
    return answer
  }
  const lookAt = (action: string, args: Record<string, unknown>, reason: string, summary: (a: ToolAnswer) => string) =>
    call('run_action', { action, node: NODE, args, reason, session_id: SESSION }, summary)

  // 1. The investigation: three reads, each with a reason, one session.
  const nodes = await call('list_nodes', {}, (a) => (a.value.nodes as Array<{ name: string, online: boolean }>).map((n) => `${n.name} ${n.online ? 'online' : 'offline'}`).join(', '))
  t.match(nodes.value.nodes, [{ name: NODE, online: true }])
  const candidates = await call('find_actions', { query: 'csi volume' }, (a) => (a.value.actions as Array<{ id: string }>).map((x) => x.id).join(', '))
  t.match(candidates.value.actions, [{ id: 'storage.csi_volume_ls', risk: 'low' }])

  const ls = await lookAt('storage.csi_volume_ls', { path: `node/${PLUGIN}/staging/default/${VOLUME}` },
    'VictoriaMetrics came back empty after the drain: what is on its CSI volume now?',
    (a) => ((a.value.output as { parsed: { entries: Array<{ path: string, mtime: string }> } }).parsed.entries).map((e) => `${e.path} (${e.mtime})`).join('; '))
  t.equal(ls.value.status, 'succeeded')
  const entries = (ls.value.output as { parsed: { entries: Array<{ path: string, type: string, mtime: string }> } }).parsed.entries
  t.same(entries.map((e) => [e.path, e.type]), [[`node/${PLUGIN}/staging/default/${VOLUME}/${USAGE}`, 'dir'], [`node/${PLUGIN}/staging/default/${VOLUME}/${USAGE}/lost+found`, 'dir']], 'the volume holds only lost+found')
  const bornAgo = Date.now() - Date.parse(entries[1]?.mtime ?? '')
  t.ok(bornAgo > 60_000 && bornAgo < 10 * 60_000, `lost+found was made minutes ago (${Math.round(bornAgo / 1000)} s)`)

  const dmesg = await lookAt('debugging.dmesg_tail', {}, 'Did the multipath device lose its paths around the time of the mkfs?',
    (a) => ((a.value.output as { parsed: Array<{ level: string, text: string }> }).parsed).map((e) => `${e.level}: ${e.text}`).join(' | '))
  t.equal(dmesg.value.status, 'succeeded')
  const kernel = (dmesg.value.output as { parsed: Array<{ text: string, facility: string }> }).parsed
  t.ok(kernel.some((e) => e.text === 'device-mapper: multipath: 254:6: Failing path 8:48.'), 'the kernel log shows the path failing')
  t.ok(kernel.some((e) => /^EXT4-fs \(md0\): mounted filesystem with ordered data mode/.test(e.text)), 'and a fresh EXT4 mount after it')
  t.ok(kernel.every((e) => e.facility === 'kern'), 'only kernel records (multipathd\'s queue_if_no_path reload is a daemon record)')

  const logs = await lookAt('docker.logs', { container: `plugin-${PLUGIN_ALLOC}`, tail: 50 }, 'What did the CSI node plugin do when it staged the volume?',
    (a) => ((a.value.output as { parsed: string[] }).parsed).join(' | '))
  t.equal(logs.value.status, 'succeeded')
  const pluginLines = (logs.value.output as { parsed: string[] }).parsed.join('\n')
  t.match(pluginLines, /blkid output empty for \/dev\/dm-5[\s\S]*Disk appears unformatted; running mkfs\.ext4/, 'the plugin log shows the probe reading "empty" and the mkfs')

  // 2. The ask: stop the allocation, with a reason, what should happen, and the three runs as evidence.
  const evidence = [ls.value.run_id, dmesg.value.run_id, logs.value.run_id] as string[]
  const stop = await call('run_action', {
    action: 'nomad.alloc_stop', node: NODE, args: { alloc_id: ALLOC }, session_id: SESSION, evidence,
    reason: 'The CSI plugin reformatted the live VictoriaMetrics volume (blkid read empty while no multipath path was active); stop the allocation before it writes over what can still be recovered.',
    expected: 'The victoria-metrics allocation stops and holds no more writes; the volume is left as it is for recovery.',
  }, (a) => `run ${String(a.value.run_id)}, link ${(a.value.approval as { url: string }).url}, quorum ${(a.value.approval as { quorum: number }).quorum}, expires ${(a.value.approval as { expires_at: string }).expires_at}`)
  const stopId = stop.value.run_id as string
  t.match(stop.value, { status: 'pending_approval', approval: { url: `${base}/ui/runs/${stopId}`, quorum: 1, approvals_so_far: 0, approver_groups: ['oncall'], expires_at: String }, next: /You cannot approve it/ })
  t.equal(nomad.requests.filter((r) => r.method === 'POST').length, 0, 'nothing is stopped while it waits')

  // 3. A person decides, in the browser, from the link.
  await eventually(async () => (await app.writ.store.get(stopId))?.run.approval?.preview?.runs[0], 10_000, 'the impact preview to start')
  const previewRun = (await app.writ.store.get(stopId))?.run.approval?.preview?.runs[0]?.run_id as string
  await eventually(async () => (await app.writ.store.get(previewRun))?.run.status === 'succeeded', 10_000, 'the preview read')
  const shown = await approveInBrowser((stop.value.approval as { url: string }).url, fx.tokens.operator)
  for (const part of ['Stop one allocation', NODE, 'high risk', 'agent-1', 'reformatted the live VictoriaMetrics volume', 'holds no more writes', 'Impact preview', 'victoria-metrics', VOLUME, 'Evidence trail', 'cited', 'storage.csi_volume_ls', 'debugging.dmesg_tail', 'docker.logs']) {
    t.match(shown, part, `the run page shows ${part}`)
  }
  transcript.push(`${++step}. Operator \`ops-1\` opens ${base}/ui/runs/${stopId} in Chromium, signs in, reads the side effects, the impact preview (victoria-metrics / storage / ${VOLUME}) and the evidence trail (the three runs, cited), and clicks **Approve**.`, '')

  // 4. Exactly one stop, and the agent learns the outcome by waiting, not by deciding.
  let outcome = await call('wait_for_run', { run_id: stopId, wait_seconds: 20 }, (a) => `${String(a.value.status_reason)}; approved by ${JSON.stringify((a.value.approval as { approved_by?: unknown }).approved_by)}`)
  for (let i = 0; i < 5 && outcome.value.status !== 'succeeded'; i++) outcome = await call('wait_for_run', { run_id: stopId, wait_seconds: 20 }, (a) => String(a.value.status_reason))
  t.match(outcome.value, { status: 'succeeded', approval: { approved_by: [{ by: 'ops-1' }] }, output: { parsed: { EvalID: String } } })
  const stops = nomad.requests.filter((r) => r.method === 'POST')
  t.same(stops.map((r) => r.path), [`/v1/allocation/${ALLOC}/stop`], 'the Nomad double received exactly one stop, for that allocation')

  // 5. The record: every step, who, why, on what evidence, who allowed it, when; and the chain verifies.
  const runIds = new Set([ls.value.run_id, dmesg.value.run_id, logs.value.run_id, stopId, previewRun] as string[])
  const events = (await (await fetch(`${base}/v1/audit?limit=10000`, { headers: auth(fx.tokens.operator) })).text()).trim().split('\n')
    .map((l) => JSON.parse(l) as AuditEvent).filter((e) => e.run_id !== undefined && runIds.has(e.run_id))
  const requested = events.filter((e) => e.type === 'run.requested' && e.actor?.id === 'agent-1')
  t.same(requested.map((e) => e.action), ['storage.csi_volume_ls', 'debugging.dmesg_tail', 'docker.logs', 'nomad.alloc_stop'], 'each of the agent\'s requests is on the record, in order')
  for (const e of requested) t.match(e.data, { reason: String, session_id: SESSION }, `${e.action}: its reason and session`)
  t.match(requested[3]?.data, { evidence, expected: /holds no more writes/, approval: { quorum: 1, approver_groups: ['oncall'] } })
  const order = (type: string, id = stopId) => events.findIndex((e) => e.type === type && e.run_id === id)
  t.match(events[order('approval.granted')], { actor: { id: 'ops-1', kind: 'operator' }, data: { quorum_met: true, binding: String }, at: String })
  t.ok(order('run.requested') < order('approval.granted') && order('approval.granted') < order('run.dispatched') && order('run.dispatched') < order('run.finished'), 'requested → approved → dispatched → finished')
  t.ok(events.some((e) => e.type === 'run.requested' && e.run_id === previewRun && e.actor?.id === 'control-plane'), 'the impact preview read is on the record too')
  const verify = await new Promise<{ code: number, stdout: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'audit', 'verify', '--nats', nats.url, '--trusted-keys', fx.publicKeyFile, '--witness', runnerJournalPath(fx, NODE)], (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }))
  })
  t.equal(verify.code, 0, verify.stdout)
  t.match(verify.stdout, /audit chain OK/)
  t.match(verify.stdout, /witnesses: (\d+) of \1 witnessed request hash\(es\) found on the chain/, 'the runner witnessed every run it accepted')

  const out = artifactsDir()
  transcript.push('## Audit (events of these runs)', '', ...events.map((e) => `- ${auditLine(e)}`), '', `\`writ audit verify --nats ${nats.url} --trusted-keys … --witness …\`: ${verify.stdout.trim()}`, '')
  writeFileSync(join(out, 'incident-transcript.md'), transcript.join('\n'))
  writeFileSync(join(out, 'incident-audit.jsonl'), `${events.map((e) => JSON.stringify(e)).join('\n')}\n`)
})

/** The operator's part: open the link, sign in, read the page, approve. Returns the page text read before approving. */
async function approveInBrowser(link: string, operatorToken: string): Promise<string> {
  const browser = await launchBrowser()
  try {
    const page = await (await browser.context()).newPage()
    await signInWithToken(page, link, operatorToken)
    const text = await page.locator('main').innerText()
    await page.screenshot({ path: join(artifactsDir(), 'incident-run-page.png'), fullPage: true })
    await page.getByLabel('Comment (optional)').fill('stop it; restore the volume from the snapshot')
    await page.getByRole('button', { name: 'Approve' }).click()
    await page.waitForURL(`${link}?done=1`)
    return text
  } finally { await browser.close() }
}

function auditLine(e: AuditEvent): string {
  const d = (e.data ?? {}) as Record<string, unknown>
  const bits = [
    d.reason ? `reason "${String(d.reason)}"` : '', d.session_id ? `session ${String(d.session_id)}` : '',
    d.evidence ? `evidence ${JSON.stringify(d.evidence)}` : '', d.expected ? `expected "${String(d.expected)}"` : '',
    d.approval ? `needs ${JSON.stringify((d.approval as { quorum: number }).quorum)} of ${JSON.stringify((d.approval as { approver_groups: string[] }).approver_groups)}` : '',
    e.type === 'approval.granted' ? `comment "${String(d.comment ?? '')}", binding ${String(d.binding).slice(0, 12)}…` : '',
    e.type === 'run.dispatched' && d.approvals ? `with approvals ${JSON.stringify((d.approvals as Array<{ by: string }>).map((a) => a.by))}` : '',
    e.type === 'run.finished' ? `status ${String(d.status)}, exit ${String(d.exit_code)}` : '',
  ].filter(Boolean).join('; ')
  return `#${e.seq} ${e.at} **${e.type}** by ${e.actor?.id ?? '?'} — ${e.action ?? ''} on ${e.node ?? ''} (run ${e.run_id ?? ''})${bits ? `: ${bits}` : ''}`
}
