/**
 * raw_exec and exec tasks inherit the Nomad agent's environment minus a
 * short deny list (nomad client/taskenv, command/agent/host), and the
 * packaged agent unit loads /etc/nomad.d/nomad.env, where clusters keep
 * NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY and NOMAD_TLS_SERVER_NAME
 * for the CLI. A task's own env wins over the agent's (Nomad copies the host
 * environment first, then the task's env, then env templates), so every
 * Nomad setting a daemon reads must be set by its job — to "" where it wants
 * none — or the agent's value reaches the daemon unasked.
 */
import t from 'tap'
import { join } from 'node:path'
import { ignoredNomadTlsSettings, loadRunnerConfig, nomadTargetFrom } from '../node-runner/dist/runner-config.js'
import { REPO_ROOT } from './doubles/fixtures-dir.js'
import { allTasks, type Json } from './helpers/hcl-jobs.js'
import { hostAgentFromJob, type LabNomadValues } from './lab/host-agent-job.js'

/** What /etc/nomad.d/nomad.env holds on a cluster with TLS, for the CLI's sake. */
const AGENT_ENV: Record<string, string> = {
  NOMAD_ADDR: 'https://127.0.0.1:4646',
  NOMAD_CACERT: '/etc/nomad.d/tls/nomad-agent-ca.pem',
  NOMAD_CLIENT_CERT: '/etc/nomad.d/tls/global-cli-nomad.pem',
  NOMAD_CLIENT_KEY: '/etc/nomad.d/tls/global-cli-nomad-key.pem',
  NOMAD_TLS_SERVER_NAME: 'client.global.nomad',
}

/** The Nomad connection settings each fork/exec daemon reads from its environment. */
const READS: Record<string, string[]> = {
  'writ-node-runner': Object.keys(AGENT_ENV),
  'writ-control-plane': Object.keys(AGENT_ENV),
}

t.test('every raw_exec and exec task sets each Nomad setting its daemon reads, so the agent\'s cannot leak in', async (t) => {
  let checked = 0
  for (const { job, name, task } of await allTasks()) {
    if (task.driver !== 'raw_exec' && task.driver !== 'exec') continue
    const reads = READS[job]
    t.ok(reads, `${job}/${name} (${task.driver}): the test knows what its daemon reads`)
    const env = (task.env?.[0] ?? {}) as Record<string, Json>
    for (const v of reads ?? []) {
      t.ok(v in env, `${job}/${name}: env sets ${v} (${v in env ? JSON.stringify(env[v]) : 'missing: the agent\'s value would be used'})`)
      checked++
    }
  }
  t.ok(checked >= 8, `${checked} settings checked`)
})

t.test('the runner started from its job on an agent with TLS settings in its environment sees none of them', async (t) => {
  const values: LabNomadValues = {
    nodeId: 'b7f3c2d4-1a5e-4c8b-9f60-1ab5e0000105', nodeName: 'node-1', nodeIp: '10.0.2.15', datacenter: 'dc1',
    vars: { release_base_url: 'https://releases.example.invalid/writ', writ_version: '0.1.0', runner_sha256: 'a'.repeat(64), packs_sha256: 'b'.repeat(64) },
    services: { 'writ-nats': { address: '10.0.2.2', port: 4222 } },
    variables: { 'nomad/jobs/writ-node-runner': { trusted_keys_pem: '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----' } },
    workloadIdentityToken: 'workload-identity-jwt',
  }
  const agent = await hostAgentFromJob(join(REPO_ROOT, 'jobs', 'writ-node-runner.nomad.hcl'), values)
  // Nomad's order: the agent's environment, then the task's own (which wins).
  const env = { ...AGENT_ENV, ...agent.env, WRIT_PACKS: join(REPO_ROOT, 'packs', 'stock'), WRIT_TRUSTED_KEYS: '/dev/null' }
  const cfg = loadRunnerConfig({}, env)
  t.match(cfg.nomadAddr, /^unix:\/\/.*\/secrets\/api\.sock$/, 'the Task API socket, from the job')
  t.same(ignoredNomadTlsSettings(cfg), [], 'no TLS setting reached the runner')
  t.same(nomadTargetFrom(cfg), { addr: cfg.nomadAddr, token: 'workload-identity-jwt' }, 'it talks to the socket with its workload identity, nothing else')
})
