/**
 * The HTTP APIs behind scenario 5's `nomad.*` and `docker.*` actions: the
 * Nomad and Docker Engine doubles (test/doubles, the fixtures' wire format)
 * on this machine, reached from the guest exactly where the runner job
 * points the runner. Its NOMAD_ADDR stays the job's Task API socket in the
 * task's secrets dir and its --docker-socket the job's Docker socket: in the
 * guest, socat listens on those unix sockets (guest/scenarios/host-agent.sh,
 * from /lab/api-forwards) and forwards each connection over QEMU's user-mode
 * network to 10.0.2.2:<port>, a loopback port here — the Nomad double's own,
 * and for the Docker double, which listens on a unix socket, a byte bridge.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { allocationLike, startNomadDouble, type NomadDouble } from '../doubles/nomad-api.js'
import { startDockerDouble, type DockerDouble, type LogFrame } from '../doubles/docker-api.js'
import { flagValues, type HostAgent } from './host-agent-job.js'
import type { LabFile } from './lab-vm.js'

/** The democratic-csi node plugin's allocation on the lab's node (jobs/democratic-csi-node.nomad.hcl: group "node", task "plugin"). */
export const PLUGIN_ALLOC = '0f9e8d7c-6b5a-4948-8372-615243342105'
/** The docker driver names a task's container `<task>-<alloc id>`. */
export const PLUGIN_CONTAINER = `plugin-${PLUGIN_ALLOC}`
const PLUGIN_JOB = 'democratic-csi-node'

/** Where the guest reaches this machine's loopback (QEMU user-mode network). */
const HOST_FROM_GUEST = '10.0.2.2'

export interface HostApis {
  nomad: NomadDouble
  docker: DockerDouble
  /** The lab node's id: the Nomad fixture's node, so `GET /v1/node/<own id>` answers with the fixture. */
  nodeId: string
  /** The plugin container's log as the Docker double serves it. */
  pluginLog: LogFrame[]
  /** `/lab/api-forwards` for this job: one `SOCKET HOST:PORT` a line. */
  forwardsFile(agent: HostAgent): LabFile
  close(): Promise<void>
}

/** The plugin's log around the probe that read "empty" and the format the guard refused (scenario 2's story, on the map the lab assembles). */
function pluginLog(): LogFrame[] {
  const device = '/dev/mapper/mpatha'
  const out = (line: string): LogFrame => ({ stream: 1, payload: Buffer.from(`${line}\n`) })
  const err = (line: string): LogFrame => ({ stream: 2, payload: Buffer.from(`${line}\n`) })
  return [
    out(`NodeStageVolume: volume vmstorage-data-0, device ${device} (multipath), staging at /csi/staging/default/vmstorage-data-0/rw-file-system-single-node-writer`),
    out(`blkid output empty for ${device} (exit code 2)`),
    out(`executing filesystem command: mkfs.ext4 -m 0 ${device}`),
    err(`failed to execute filesystem command: mkfs.ext4 -m 0 ${device}, response: {"code":32,"stderr":"mkfs-guard: REFUSE ${device}: allow-listed, but not proven blank and readable"}`),
  ]
}

/**
 * The unix sockets the job points the runner at, each with the host port
 * (seen from the guest) that serves it. Throws naming what the lab cannot
 * forward when the job stops saying where its APIs are.
 */
export function apiForwards(agent: HostAgent, hostPorts: { nomad: number, docker: number }): Array<{ api: 'nomad' | 'docker', socket: string, target: string }> {
  const nomadAddr = agent.env.NOMAD_ADDR ?? ''
  if (!nomadAddr.startsWith('unix:///')) throw new Error(`the job's NOMAD_ADDR is "${nomadAddr}", not the Task API socket (unix:///…); teach test/lab/host-apis.ts where the runner's Nomad API is`)
  const dockerSocket = flagValues(agent.argv, 'docker-socket')[0]
  if (dockerSocket === undefined) throw new Error('the job gives the runner no --docker-socket; teach test/lab/host-apis.ts where the runner\'s Docker API is')
  return [
    { api: 'nomad', socket: nomadAddr.slice('unix://'.length), target: `${HOST_FROM_GUEST}:${hostPorts.nomad}` },
    { api: 'docker', socket: dockerSocket, target: `${HOST_FROM_GUEST}:${hostPorts.docker}` },
  ]
}

/** A loopback TCP port whose connections are piped to a unix socket. */
async function tcpBridge(socketPath: string): Promise<{ port: number, close(): Promise<void> }> {
  const open = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(socketPath)
    for (const s of [client, upstream]) {
      open.add(s)
      s.once('close', () => open.delete(s))
      s.once('error', () => { client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of open) s.destroy()
      server.close(() => resolve())
    }),
  }
}

/**
 * Starts both doubles and the Docker bridge. The Nomad double wants the
 * workload identity token the job gives the runner (NOMAD_TOKEN), so a call
 * without the job's environment is refused as Nomad would refuse it.
 */
export async function startHostApis(opts: { workloadIdentityToken: string }): Promise<HostApis> {
  // The fixture's node id is known to the double; the allocation on that node has to be given at start.
  const probe = await startNomadDouble()
  const nodeId = probe.ids.node
  await probe.close()
  const nomad = await startNomadDouble({
    token: opts.workloadIdentityToken,
    extraAllocs: [allocationLike({ id: PLUGIN_ALLOC, nodeId, jobId: PLUGIN_JOB, taskGroup: 'node' })],
  })
  const frames = pluginLog()
  const docker = await startDockerDouble({
    extraContainers: [{ Id: 'c5a1d0e2f3b4'.padEnd(64, '0'), Names: [`/${PLUGIN_CONTAINER}`], Image: 'docker.io/democraticcsi/democratic-csi:latest', State: 'running', logFrames: frames }],
  })
  const bridge = await tcpBridge(docker.socketPath)
  const nomadPort = Number(new URL(nomad.addr).port)
  return {
    nomad, docker, nodeId, pluginLog: frames,
    forwardsFile(agent) {
      const lines = apiForwards(agent, { nomad: nomadPort, docker: bridge.port }).map((f) => `${f.socket} ${f.target}`)
      return { guestPath: '/lab/api-forwards', content: `${lines.join('\n')}\n` }
    },
    async close() {
      await bridge.close()
      await Promise.all([nomad.close(), docker.close()])
    },
  }
}
