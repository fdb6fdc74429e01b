/**
 * Scenario 5 (guest/scenarios/host-agent.sh): the stock packs on a real host.
 * This machine runs a nats-server and the control plane (a real process,
 * with the stock packs from the release's packs tarball); the guest runs the
 * runner's release executable exactly as jobs/writ-node-runner.nomad.hcl
 * starts it (read from the job file: host-agent-job.ts), reaching the
 * nats-server through QEMU's user-mode network. Real writs, sent through the
 * REST API with an agent token, run the multipath, storage and debugging
 * actions against the guest's kernel and device-mapper while the map is
 * healthy and while it is stuck; their parsed output must match what the
 * scenario set up. While it is stuck, the nomad.* and docker.* actions run
 * too, under the job's environment (its NOMAD_ADDR, NOMAD_TOKEN,
 * NODE_OPTIONS, --docker-socket), against the API doubles on this machine
 * (host-apis.ts); the runner must still be alive after them.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNatsServer, freePort } from '../helpers/nats-server.js'
import { makeCpFixture } from '../helpers/cp-fixtures.js'
import { startCpProcess } from '../helpers/cp-process.js'
import { eventually } from '../helpers/cp-fake-runner.js'
import { selectFrames, type LogFrame } from '../doubles/docker-api.js'
import { flagValues, hostAgentFromJob } from './host-agent-job.js'
import { natsCreds, taskFiles } from './host-agent-task.js'
import { PLUGIN_ALLOC, PLUGIN_CONTAINER, startHostApis } from './host-apis.js'
import { labSuite, mapState, one, resultLines, formatResult } from './lab-suite.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const JOB = join(ROOT, 'jobs', 'writ-node-runner.nomad.hcl')
const WWN = '5000c50015ea7105'
const NODE_NAME = 'lab-node'
/** What Nomad puts in NOMAD_TOKEN for the job's `identity { env = true }`; the Nomad double wants it on every call. */
const WORKLOAD_TOKEN = 'lab-workload-identity-token'

interface Run { id: string, status: string, status_reason: string, result?: { exit_code: number | null, stdout: string, stderr: string, parsed?: unknown, parse_error?: string } }
interface Topology { source: string, maps: Array<{ name: string, wwid: string, queueing: boolean, features: string, pathGroups: Array<{ index: number, status: string, paths: Array<{ dev: string, devT?: string, dmState: string, checkerState: string, devState?: string }> }> }> }

const lab = await labSuite(t)

if (lab) {
  t.test('5. the stock packs on a real host: real writs against the guest\'s kernel and device-mapper, healthy and stuck', async (t) => {
    const release = lab.release()
    const work = mkdtempSync(join(tmpdir(), 'writ-lab-agent-'))
    t.teardown(() => rmSync(work, { recursive: true, force: true }))
    const packsDir = join(work, 'packs')
    mkdirSync(packsDir)
    execFileSync('tar', ['-xzf', release.packsTarball, '-C', packsDir])

    const nats = await startNatsServer()
    t.teardown(() => nats.stop())
    const fx = makeCpFixture(nats.url)
    t.teardown(() => fx.cleanup())
    // The same packs artifact as the runner; times sized for a runner under software emulation, and a rate
    // limit that lets the test poll the fleet every 25 ms for the minutes such a runner may take to come online.
    const cp = await startCpProcess(fx.writeConfigFile({
      packs: { dirs: [packsDir] },
      runs: { writ_ttl: '5m', ack_timeout: '30s', lost_grace: '60s', sweep_interval: '1s', max_wait: '120s' },
      limits: { body_bytes: 64 * 1024, rate_per_minute: 60_000 },
    }))
    t.teardown(() => cp.stop())
    const headers = { authorization: `Bearer ${fx.tokens.agent}`, 'content-type': 'application/json' }
    const apis = await startHostApis({ workloadIdentityToken: WORKLOAD_TOKEN })
    t.teardown(() => apis.close())
    // The node Nomad's fixture describes, so nomad.node_status of the runner's own node has an answer.
    const NODE_ID = apis.nodeId

    const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex')
    const agent = await hostAgentFromJob(JOB, {
      nodeId: NODE_ID, nodeName: NODE_NAME, nodeIp: '10.0.2.15', datacenter: 'dc1',
      vars: { release_base_url: 'https://releases.lab.invalid/writ', writ_version: release.version, runner_sha256: sha(release.runner), packs_sha256: sha(release.packsTarball) },
      services: { 'writ-nats': { address: '10.0.2.2', port: nats.port } },
      variables: { 'nomad/jobs/writ-node-runner': { nomad_token: 'lab-nomad-token-not-used', trusted_keys_pem: readFileSync(fx.publicKeyFile, 'utf8').trim() } },
      workloadIdentityToken: WORKLOAD_TOKEN,
    })
    t.comment(`from ${basename(JOB)}: driver ${agent.driver}, argv ${JSON.stringify(agent.argv)}`)
    t.comment(`environment: ${Object.keys(agent.env).sort().join(' ')}`)
    if (agent.mounts.length > 0) t.comment(`mounts not made in the guest (no container there): ${agent.mounts.map((m) => `${m.source}→${m.target}`).join(', ')}`)
    const metricsPort = agent.ports.metrics ?? Number(/:(\d+)$/.exec(flagValues(agent.argv, 'metrics-listen')[0] ?? '')?.[1])
    const hostMetrics = await freePort()

    const vm = await lab.boot('host-agent', {
      scenario: 'host-agent', luns: [{ wwn: WWN, sizeMiB: 128 }], args: { wwn: WWN }, timeoutMs: 840_000,
      net: { hostForwards: [{ host: hostMetrics, guest: metricsPort }] },
      files: [...taskFiles(JOB, agent, { runner: release.runner, packsDir }, natsCreds(NODE_ID)), apis.forwardsFile(agent)],
    })
    const healthy = await vm.waitFor('the healthy map', (r) => r.event === 'healthy' || r.event === 'error', 240_000)
    t.equal(healthy.event, 'healthy', `the guest set up the healthy map: ${formatResult(healthy)}`)

    const online = await eventually(async () => {
      const res = await fetch(`${cp.url}/v1/nodes`, { headers })
      if (res.status !== 200) throw new Error(`GET /v1/nodes: ${res.status} ${await res.text()}`)
      const nodes = ((await res.json()) as { nodes: Array<{ id: string, name: string, online: boolean }> }).nodes
      return nodes.find((n) => n.id === NODE_ID && n.online)
    }, 300_000, `the runner in the guest to come online (console:\n${vm.consoleTail()})`)
    t.equal(online.name, NODE_NAME, 'the runner in the guest heartbeats over NATS with the node id and name the job gives it')
    const readyz = async (): Promise<number | string> => {
      const res = await fetch(`http://127.0.0.1:${hostMetrics}/readyz`).catch((e: Error) => e)
      return res instanceof Error ? `${res.message} (${String((res.cause as Error | undefined)?.message)})` : res.status
    }
    t.equal(await readyz(), 200, `its /readyz (the job's service check) answers 200 through the forwarded metrics port ${metricsPort}`)

    const run = async (action: string, args: Record<string, unknown> = {}): Promise<Run> => {
      const res = await fetch(`${cp.url}/v1/runs`, { method: 'POST', headers, body: JSON.stringify({ action, node: NODE_ID, args, reason: 'incident lab, scenario 5', wait: 120 }) })
      const body = (await res.json()) as Run
      if (res.status !== 200 && res.status !== 201 && res.status !== 202) throw new Error(`POST /v1/runs ${action}: ${res.status} ${JSON.stringify(body)}`)
      return body
    }
    const dev = `/dev/mapper/${healthy.map}`
    const actions: Array<[string, Record<string, unknown>]> = [
      ['multipath.topology', {}], ['multipath.maps_json', {}], ['multipath.paths', {}], ['storage.lsblk', {}],
      ['storage.iscsi_sessions', {}], ['debugging.dmesg_tail', {}], ['debugging.disk_free', {}],
      // Last: on the stuck map its read queues in the kernel.
      ['storage.blkid', { device: dev }],
    ]
    // What an agent reads next while the map is stuck: its node and the CSI plugin's allocation from Nomad,
    // the plugin's log from Docker — over the Task API socket and the Docker socket the job gives the runner.
    const httpActions: Array<[string, Record<string, unknown>]> = [
      ['nomad.node_status', { node_id: NODE_ID }], ['nomad.alloc_status', { alloc_id: PLUGIN_ALLOC }], ['docker.logs', { container: PLUGIN_CONTAINER, tail: 50 }],
    ]
    const runAll = async (phase: string, list = actions): Promise<Map<string, Run>> => {
      const out = new Map<string, Run>()
      for (const [action, args] of list) {
        const started = Date.now()
        const r = await run(action, args)
        out.set(action, r)
        t.comment(`${phase}: ${action} → ${r.status} (exit ${r.result?.exit_code ?? '-'}, ${((Date.now() - started) / 1000).toFixed(1)} s)${r.result?.parse_error ? ` parse_error: ${r.result.parse_error}` : ''}${r.status !== 'succeeded' ? ` — ${r.status_reason}` : ''}`)
      }
      return out
    }

    const healthyRuns = await runAll('healthy')
    vm.release('healthy')
    const stuck = await vm.waitFor('the stuck map', (r) => r.event === 'stuck' || r.event === 'error', 120_000)
    const stuckRuns = await runAll('stuck')
    const httpRuns = await runAll('stuck, HTTP', httpActions)
    const readyAfterHttp = await readyz()
    vm.release('stuck')
    const { exit, end } = await vm.finished()
    t.comment(`scenario 5 result lines (VM ${(exit.ms / 1000).toFixed(1)} s):\n${resultLines(vm, ['agent_started'])}`)
    t.equal(end.rc, '0', 'the scenario ran to its end')
    t.same(vm.events('error'), [], 'and reported no error')
    t.equal(one(vm, 'agent_stopped').rc, '0', 'the runner drained and exited 0 on SIGTERM')
    t.equal(one(vm, 'apis_forwarded').forwards, apis.forwardsFile(agent).content?.trim(), 'socat forwarded the job\'s Task API socket and Docker socket to the doubles')

    const paths = (healthy.paths as string).trim().split(' ')
    t.equal(paths.length, 2, `two paths to the LUN: ${paths.join(', ')}`)
    const healthyState = mapState(healthy.state)
    const activeGroup = healthyState.groups.indexOf('A') + 1
    t.ok(activeGroup > 0, `healthy: the kernel has group ${activeGroup} active`)
    const stuckState = mapState(stuck.state)
    t.same([stuckState.groups, stuckState.paths.map((p) => p.state), stuckState.queueing], [['E', 'E'], ['F', 'F'], true], 'stuck: no active group, every path failed, queueing')

    for (const [phase, runs] of [['healthy', healthyRuns], ['stuck', stuckRuns]] as Array<[string, Map<string, Run>]>) {
      t.test(`${phase}: multipath.topology and multipath.maps_json agree with the kernel`, async (t) => {
        for (const action of ['multipath.topology', 'multipath.maps_json']) {
          const r = runs.get(action) as Run
          t.equal(r.status, 'succeeded', `${action} succeeded`)
          const topo = r.result?.parsed as Topology
          const map = topo?.maps.find((m) => m.name === healthy.map)
          t.equal(map?.wwid, `3${WWN}`, `${action}: map ${healthy.map} with the LUN's WWID (${topo?.source})`)
          t.equal(map?.queueing, true, `${action}: queue_if_no_path`)
          const devs = map?.pathGroups.flatMap((g) => g.paths.map((p) => p.dev)).sort()
          t.same(devs, [...paths].sort(), `${action}: the two paths`)
          const groupStates = map?.pathGroups.map((g) => g.status)
          if (phase === 'healthy') {
            t.same(groupStates?.map((s) => s === 'active'), healthyState.groups.map((g) => g === 'A'), `${action}: group ${activeGroup} active, as the kernel says (${groupStates?.join(', ')})`)
            t.ok(map?.pathGroups.every((g) => g.paths.every((p) => p.dmState === 'active' && p.checkerState === 'ready')), `${action}: every path active and ready`)
          } else {
            t.same(groupStates, ['enabled', 'enabled'], `${action}: every group enabled, none active`)
            t.ok(map?.pathGroups.every((g) => g.paths.every((p) => p.dmState === 'failed' && p.checkerState === 'faulty')), `${action}: every path failed and faulty`)
          }
        }
      })

      t.test(`${phase}: multipath.paths lists both paths`, async (t) => {
        const r = runs.get('multipath.paths') as Run
        t.equal(r.status, 'succeeded')
        const lines = (r.result?.parsed as string[]) ?? []
        for (const p of paths) {
          const line = lines.find((l) => new RegExp(`\\s${p}\\s`).test(l))
          t.match(line, phase === 'healthy' ? /\sactive\s+ready\s+running\s/ : /\sfailed\s+faulty\s/, `${p}: ${line?.trim()}`)
        }
      })

      t.test(`${phase}: storage.lsblk shows the map over both paths, ext4, mounted`, async (t) => {
        const r = runs.get('storage.lsblk') as Run
        t.equal(r.status, 'succeeded', `storage.lsblk succeeded${r.result?.stderr ? ` (stderr: ${r.result.stderr.trim()})` : ''}`)
        type Dev = { name: string, kname: string, type: string, fstype: string | null, mountpoint: string | null, wwn: string | null, children?: Dev[] }
        const devices = ((r.result?.parsed as { blockdevices?: Dev[] })?.blockdevices ?? [])
        for (const p of paths) {
          const disk = devices.find((d) => d.kname === p)
          t.equal(disk?.wwn, `0x${WWN}`, `${p}: the LUN's WWN`)
          const child = disk?.children?.find((c) => c.name === healthy.map)
          t.match(child, { type: 'mpath', fstype: 'ext4', mountpoint: '/mnt/data' }, `${p} → ${healthy.map}: type mpath, ext4, mounted at /mnt/data`)
        }
      })

      t.test(`${phase}: storage.iscsi_sessions gives a clear empty answer`, async (t) => {
        const r = runs.get('storage.iscsi_sessions') as Run
        t.equal(r.status, 'succeeded', `no session is an answer, not an error (exit ${r.result?.exit_code}: ${r.result?.stderr.trim()})`)
        t.same(r.result?.parsed, [], 'parsed: no session')
      })

      t.test(`${phase}: debugging.disk_free lists the map's filesystem`, async (t) => {
        const r = runs.get('debugging.disk_free') as Run
        t.equal(r.status, 'succeeded')
        const line = ((r.result?.parsed as string[]) ?? []).find((l) => l.endsWith(' /mnt/data'))
        const cols = line?.trim().split(/\s+/) ?? []
        t.same([cols[0], cols[1]], [dev, 'ext4'], `${line?.replace(/\s+/g, ' ')}`)
        const size = Number(cols[2])
        t.ok(size > 100 * 1024 * 1024 && size <= Number(healthy.size), `a ${size} byte filesystem on the ${healthy.size} byte LUN`)
      })

      t.test(`${phase}: debugging.dmesg_tail parses the guest kernel's log`, async (t) => {
        const r = runs.get('debugging.dmesg_tail') as Run
        t.equal(r.status, 'succeeded')
        const entries = (r.result?.parsed as Array<{ level?: string, subsystem?: string, text: string }>) ?? []
        t.ok(entries.length > 50, `${entries.length} entries`)
        t.ok(entries.some((e) => /Linux version/.test(e.text)), 'from boot on')
        const failing = entries.filter((e) => /Failing path (8:\d+)/.test(e.text))
        if (phase === 'healthy') t.equal(failing.length, 0, 'no failed path yet')
        else {
          t.ok(failing.length >= 2, `the kernel's "Failing path" lines: ${failing.map((e) => `[${e.level}] ${e.subsystem}: ${e.text}`).join(' | ')}`)
          t.ok(failing.every((e) => e.level === 'warn' && /device-mapper: multipath/.test(e.subsystem ?? '')), 'level warn, subsystem device-mapper: multipath')
        }
      })

      t.test(`${phase}: storage.blkid`, async (t) => {
        const r = runs.get('storage.blkid') as Run
        if (phase === 'healthy') {
          t.equal(r.status, 'succeeded')
          const kv = Object.fromEntries(((r.result?.parsed as string[]) ?? []).map((l) => l.split('=', 2) as [string, string]))
          t.match(kv, { TYPE: 'ext4', LABEL: 'labvol', UUID: healthy.fs_uuid }, `the ext4 signature: ${JSON.stringify(kv)}`)
        } else {
          t.equal(r.status, 'timed_out', `the probe's read queued on the map: ${r.status_reason}`)
        }
      })
    }

    t.test('stuck: nomad.* and docker.* under the job\'s environment, and the runner lives on', async (t) => {
      const status = (action: string): string => { const r = httpRuns.get(action) as Run; return `${r.status}${r.status === 'succeeded' ? '' : ` — ${r.status_reason}`}` }
      const nodeStatus = httpRuns.get('nomad.node_status') as Run
      t.equal(status('nomad.node_status'), 'succeeded', 'nomad.node_status of the runner\'s own node')
      t.match(nodeStatus.result?.parsed, { ID: NODE_ID, Datacenter: String, Status: String }, 'the Nomad fixture\'s node, parsed')
      const alloc = httpRuns.get('nomad.alloc_status') as Run
      t.equal(status('nomad.alloc_status'), 'succeeded', 'nomad.alloc_status of the CSI plugin\'s allocation on this node')
      t.match(alloc.result?.parsed, { ID: PLUGIN_ALLOC, NodeID: NODE_ID, JobID: 'democratic-csi-node', TaskGroup: 'node' }, 'its allocation record, parsed')
      const nomadCalls = apis.nomad.requests.map((r) => `${r.method} ${r.path} token=${r.headers['x-nomad-token'] === WORKLOAD_TOKEN ? 'workload-identity' : String(r.headers['x-nomad-token'])}`)
      t.same(nomadCalls, [
        `GET /v1/node/${NODE_ID} token=workload-identity`,
        `GET /v1/allocation/${PLUGIN_ALLOC} token=workload-identity`, // the runner's own check: is the allocation on this node?
        `GET /v1/allocation/${PLUGIN_ALLOC} token=workload-identity`,
      ], 'Nomad received exactly these calls, each with the job\'s workload identity (NOMAD_TOKEN) over the Task API socket')

      const logs = httpRuns.get('docker.logs') as Run
      t.equal(status('docker.logs'), 'succeeded', 'docker.logs of the CSI plugin\'s container')
      const sent = selectFrames(apis.pluginLog, { stdout: '1', stderr: '1', timestamps: '1', tail: '50' })
      const stream = (n: LogFrame['stream']): string => Buffer.concat(sent.filter((f) => f.stream === n).map((f) => f.payload)).toString('utf8')
      t.equal(logs.result?.stdout, stream(1), 'stdout: the plugin\'s log lines, demultiplexed, with their timestamps')
      t.equal(logs.result?.stderr, stream(2), 'stderr: its stderr frame (the refused format)')
      t.match((logs.result?.parsed as string[] | undefined)?.join('\n'), /blkid output empty for \/dev\/mapper\/mpatha \(exit code 2\)[\s\S]*executing filesystem command: mkfs\.ext4 -m 0/, 'parsed lines: the probe that read "empty", then the format')
      t.same(apis.docker.requests.map((r) => `${r.method} ${r.path}`), ['GET /version', `GET /v${apis.docker.apiVersion}/containers/${PLUGIN_CONTAINER}/logs`], 'Docker received the version check and the logs call over /var/run/docker.sock')

      t.equal(readyAfterHttp, 200, 'after the HTTP actions the runner\'s /readyz still answers 200')
      const alive = one(vm, 'agent_before_stop')
      t.equal(alive.alive, 'yes', `the runner process was still running when the scenario came to stop it${alive.alive === 'yes' ? '' : `; its log:\n${one(vm, 'agent_stopped').log_tail}`}`)
    })
  })
}
