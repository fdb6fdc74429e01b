/**
 * The lab starts the runner exactly as jobs/writ-node-runner.nomad.hcl says
 * (test/lab/host-agent-job.ts). This reads the job the same way without a VM,
 * so a change to the job that the lab could not reproduce fails here, in
 * `npm test`, before the lab's slow boot would.
 */
import t from 'tap'
import { join } from 'node:path'
import { REPO_ROOT } from './doubles/fixtures-dir.js'
import { flagValues, hostAgentFromJob, type LabNomadValues } from './lab/host-agent-job.js'
import { apiForwards } from './lab/host-apis.js'

const JOB = join(REPO_ROOT, 'jobs', 'writ-node-runner.nomad.hcl')
const values = (items: Record<string, string>): LabNomadValues => ({
  nodeId: 'b7f3c2d4-1a5e-4c8b-9f60-1ab5e0000105', nodeName: 'lab-node', nodeIp: '10.0.2.15', datacenter: 'dc1',
  vars: { release_base_url: 'https://releases.lab.invalid/writ', writ_version: '0.1.0', runner_sha256: 'a'.repeat(64), packs_sha256: 'b'.repeat(64) },
  services: { 'writ-nats': { address: '10.0.2.2', port: 4222 } },
  variables: { 'nomad/jobs/writ-node-runner': { trusted_keys_pem: '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----', ...items } },
  workloadIdentityToken: 'lab-workload-identity',
})

t.test('the runner job renders for the lab: the command, its flags and environment', async (t) => {
  const agent = await hostAgentFromJob(JOB, values({}))
  t.equal(agent.argv[1], 'run', `the runner is started with "run" (${agent.argv.join(' ')})`)
  t.ok(flagValues(agent.argv, 'trusted-keys')[0], '--trusted-keys is passed')
  t.equal(agent.env.NODE_ID, 'b7f3c2d4-1a5e-4c8b-9f60-1ab5e0000105', 'NODE_ID is the Nomad node id')
  t.match(agent.env.WRIT_NATS_URL, 'nats://10.0.2.2:4222', 'the NATS URL comes from the service template')
  t.notOk(agent.env.WRIT_APPROVERS_REGISTRY, 'no approver registry published: passkey approvals stay off')
})

t.test('with an approver registry published, the runner is pointed at it', async (t) => {
  const agent = await hostAgentFromJob(JOB, values({ approver_registry: '{"v":1}', approvers_key_pem: '-----BEGIN PUBLIC KEY-----\ny\n-----END PUBLIC KEY-----' }))
  t.match(agent.env.WRIT_APPROVERS_REGISTRY, /\/secrets\/approvers\.json$/)
  t.match(agent.env.WRIT_APPROVERS_KEYS, /\/secrets\/approvers\.pub\.pem$/)
  const registry = agent.files.find((f) => f.path.endsWith('/secrets/approvers.json'))
  t.equal(registry?.content?.trim(), '{"v":1}', 'the registry file holds the published registry')
})

t.test('scenario 5 forwards the APIs where the job points the runner: the Task API socket in its secrets dir, the Docker socket', async (t) => {
  const agent = await hostAgentFromJob(JOB, values({}))
  const forwards = apiForwards(agent, { nomad: 4646, docker: 2375 })
  t.same(forwards, [
    { api: 'nomad', socket: `${agent.env.NOMAD_SECRETS_DIR}/api.sock`, target: '10.0.2.2:4646' },
    { api: 'docker', socket: '/var/run/docker.sock', target: '10.0.2.2:2375' },
  ], 'socat in the guest listens where NOMAD_ADDR and --docker-socket say')
  t.match(agent.env.NODE_OPTIONS, /--jitless/, 'and the runner keeps the job\'s NODE_OPTIONS (no JIT, no WebAssembly) while it calls them')
  t.equal(agent.env.NOMAD_TOKEN, 'lab-workload-identity', 'with the workload identity in NOMAD_TOKEN')
  t.throws(() => apiForwards({ ...agent, env: { ...agent.env, NOMAD_ADDR: 'http://127.0.0.1:4646' } }, { nomad: 1, docker: 2 }), /not the Task API socket/, 'a job that stops using the Task API socket is named, not silently forwarded')
})
