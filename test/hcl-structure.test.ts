/**
 * The deployment files as an operator would meet them: every .hcl/.tf parses
 * with the real HCL parser (@cdktf/hcl2json, HashiCorp's hcl in WebAssembly),
 * jobs have the types and host access the design says, every variable is
 * declared and described, no secret is written into any file, file() paths
 * exist, and the alert rules only use metrics the watchdog exports.
 * terraform / nomad CLIs run when they are on PATH, with visible skips when not.
 */
import t from 'tap'
import { parse as parseHcl } from '@cdktf/hcl2json'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { walk } from './helpers/hcl-jobs.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const jobsDir = join(root, 'jobs')
const tfDir = join(root, 'terraform')

type Json = any // hcl2json output is untyped JSON by nature


const allFiles = [...walk(jobsDir), ...walk(tfDir)]
const hclFiles = allFiles.filter((f) => f.endsWith('.hcl') || f.endsWith('.tf'))
const jobFiles = allFiles.filter((f) => f.endsWith('.nomad.hcl'))
const rel = (f: string): string => relative(root, f)

const parsed = new Map<string, Json>()
async function hcl(file: string): Promise<Json> {
  let v = parsed.get(file)
  if (!v) {
    v = await parseHcl(file, readFileSync(file, 'utf8'))
    parsed.set(file, v)
  }
  return v
}

function onlyJob(doc: Json): { name: string, job: Json } {
  const names = Object.keys(doc.job ?? {})
  if (names.length !== 1) throw new Error(`expected exactly one job, found ${names.length}`)
  const name = names[0] as string
  return { name, job: doc.job[name][0] }
}

/** var.NAME references anywhere in the parsed document. */
function varRefs(doc: Json): Set<string> {
  const refs = new Set<string>()
  const text = JSON.stringify({ ...doc, variable: undefined })
  for (const m of text.matchAll(/\bvar\.([A-Za-z_][A-Za-z0-9_-]*)/g)) refs.add(m[1] as string)
  return refs
}

function groups(job: Json): Array<{ name: string, group: Json }> {
  return Object.entries(job.group ?? {}).map(([name, g]) => ({ name, group: (g as Json[])[0] }))
}
function tasks(group: Json): Array<{ name: string, task: Json }> {
  return Object.entries(group.task ?? {}).map(([name, x]) => ({ name, task: (x as Json[])[0] }))
}

const EXPECTED_JOBS: Record<string, { job: string, type: string }> = {
  'nats.nomad.hcl': { job: 'writ-nats', type: 'service' },
  'writ-control-plane.nomad.hcl': { job: 'writ-control-plane', type: 'service' },
  'writ-node-runner.nomad.hcl': { job: 'writ-node-runner', type: 'system' },
  'democratic-csi-node.nomad.hcl': { job: 'democratic-csi-node', type: 'system' },
  'multipath-watchdog.nomad.hcl': { job: 'multipath-watchdog', type: 'system' },
}

t.test('every .hcl and .tf file parses with the HCL parser', async (t) => {
  t.ok(hclFiles.length >= 10, `found ${hclFiles.length} files`)
  for (const f of hclFiles) {
    await t.resolves(hcl(f), `${rel(f)} parses`)
  }
})

t.test('the five job files exist, one job each, with the right type', async (t) => {
  t.same(jobFiles.map((f) => f.slice(jobsDir.length + 1)).sort(), Object.keys(EXPECTED_JOBS).sort())
  for (const f of jobFiles) {
    const want = EXPECTED_JOBS[f.slice(jobsDir.length + 1)]
    if (!want) continue
    const { name, job } = onlyJob(await hcl(f))
    t.equal(name, want.job, `${rel(f)} declares job "${want.job}"`)
    t.equal(job.type, want.type, `${want.job} is a ${want.type} job`)
    if (want.type === 'system') {
      for (const { name: g, group } of groups(job)) t.notOk('count' in group, `system job ${want.job} group ${g} has no count`)
    }
  }
})

t.test('job variables: declared at the top, described, typed, and every var.x used is declared', async (t) => {
  for (const f of jobFiles) {
    const doc = await hcl(f)
    const declared = doc.variable ?? {}
    const text = readFileSync(f, 'utf8')
    const firstVar = text.search(/^variable "/m)
    const jobAt = text.search(/^job "/m)
    t.ok(firstVar >= 0 && firstVar < jobAt, `${rel(f)}: variable blocks come before the job`)
    for (const [name, v] of Object.entries(declared)) {
      const body = (v as Json[])[0]
      t.ok(typeof body.description === 'string' && body.description.length > 10, `${rel(f)}: variable ${name} has a description`)
      t.ok(body.type, `${rel(f)}: variable ${name} has a type`)
    }
    for (const used of varRefs(doc)) t.ok(used in declared, `${rel(f)}: var.${used} is declared`)
    for (const name of Object.keys(declared)) t.ok(varRefs(doc).has(name), `${rel(f)}: variable ${name} is used`)
  }
})

t.test('terraform variables: description and type on every one, every var.x declared', async (t) => {
  for (const dir of [tfDir, join(tfDir, 'examples/basic')]) {
    const files = readdirSync(dir).filter((f) => f.endsWith('.tf')).map((f) => join(dir, f))
    const declared: Record<string, Json> = {}
    const used = new Set<string>()
    for (const f of files) {
      const doc = await hcl(f)
      for (const [name, v] of Object.entries(doc.variable ?? {})) declared[name] = (v as Json[])[0]
      for (const u of varRefs(doc)) used.add(u)
    }
    for (const [name, body] of Object.entries(declared)) {
      t.ok(typeof body.description === 'string' && body.description.length > 10, `${rel(dir)}: variable ${name} has a description`)
      t.ok(body.type, `${rel(dir)}: variable ${name} has a type`)
    }
    for (const u of used) t.ok(u in declared, `${rel(dir)}: var.${u} is declared`)
    // A variable nothing reads is a setting an operator changes to no effect.
    for (const name of Object.keys(declared)) t.ok(used.has(name), `${rel(dir)}: variable ${name} is used`)
  }
  const vars = (await hcl(join(tfDir, 'variables.tf'))).variable
  for (const name of ['release_base_url', 'writ_version', 'control_plane_sha256', 'runner_sha256', 'packs_sha256', 'control_plane_count', 'slack_webhook_url', 'portal_session_key_hex', 'signing_key_pem', 'nats_server_count']) {
    t.ok(vars[name][0].validation, `variable ${name} is validated (a wrong value is possible)`)
  }
  for (const name of ['signing_key_pem', 'slack_webhook_url', 'portal_session_key_hex', 'principals_yaml', 'control_plane_nats_creds', 'nats_route_password']) {
    t.equal(vars[name][0].sensitive, true, `variable ${name} is sensitive`)
  }
})

t.test('terraform deploys every job from ../jobs and feeds only variables the job declares', async (t) => {
  const main = await hcl(join(tfDir, 'main.tf'))
  const jobs = main.resource.nomad_job as Record<string, Json[]>
  const fed = new Set<string>()
  for (const [res, [body]] of Object.entries(jobs)) {
    const m = /\/([a-z-]+\.nomad\.hcl)/.exec(body.jobspec)
    t.ok(m, `nomad_job.${res} reads a job file with file()`)
    if (!m) continue
    const jobFile = m[1] as string
    fed.add(jobFile)
    // The provider deregisters without purge and returns before the deployment by default:
    // destroy then fails on the namespace (it still holds the jobs), and a failed rollout applies "successfully".
    t.equal(body.purge_on_destroy, true, `nomad_job.${res}: purge_on_destroy, so destroy can delete the namespace`)
    t.equal(body.detach, false, `nomad_job.${res}: detach = false, so apply waits for the deployment`)
    const jobVars = (await hcl(join(jobsDir, jobFile))).variable ?? {}
    const varsExpr = body.hcl2?.[0]?.vars
    const keys = new Set<string>()
    if (typeof varsExpr === 'string') {
      if (varsExpr.includes('local.release_vars')) { keys.add('release_base_url'); keys.add('writ_version') }
      for (const k of varsExpr.matchAll(/([a-z_0-9]+)\s*=/g)) keys.add(k[1] as string)
    } else {
      for (const k of Object.keys(varsExpr ?? {})) keys.add(k)
    }
    for (const k of keys) t.ok(k in jobVars, `nomad_job.${res}: hcl2 var ${k} is declared in ${jobFile}`)
    for (const [name, [v]] of Object.entries(jobVars) as Array<[string, Json[]]>) {
      if (!('default' in v)) t.ok(keys.has(name), `nomad_job.${res}: required job variable ${name} is supplied`)
    }
  }
  t.same([...fed].sort(), Object.keys(EXPECTED_JOBS).sort(), 'every job file is deployed by the module')

  const pol = main.resource.nomad_acl_policy
  const runnerRules = pol.node_runner[0].rules_hcl as string
  const cpRules = pol.control_plane[0].rules_hcl as string
  t.match(JSON.stringify(main.locals), /read-job\\", \\"alloc-lifecycle/, 'runner namespace capabilities: read-job, alloc-lifecycle')
  t.match(runnerRules, /node\s*\{\s*policy\s*=\s*"write"/, 'runner: node write (drain, eligibility)')
  // The control plane calls GET /v1/nodes and nothing else (impact previews are runner actions): node read is all it holds.
  t.same(await parseHcl('cp-rules.hcl', cpRules), { node: [{ policy: 'read' }] }, 'control plane: node read, and no namespace capability at all')
  for (const rules of [runnerRules, cpRules]) {
    t.notMatch(rules, /submit-job|management|operator|agent\s*\{|policy\s*=\s*"write"[\s\S]*namespace/, 'no broader rights')
  }
  t.notOk(main.resource.nomad_acl_token, 'no long-lived Nomad token in Terraform state: both daemons use their workload identity')
  t.same(pol.node_runner[0].job_acl, [{ namespace: '${nomad_namespace.writ.name}', job_id: 'writ-node-runner' }], 'the runner policy is attached to the runner job')
  t.same(pol.control_plane[0].job_acl, [{ namespace: '${nomad_namespace.writ.name}', job_id: 'writ-control-plane' }], 'the control-plane policy is attached to the control-plane job')
  const cpTask = tasks(groups(onlyJob(await hcl(join(jobsDir, 'writ-control-plane.nomad.hcl'))).job)[0]!.group)[0]!.task
  t.same(cpTask.identity, [{ env: true, file: false }], 'the control plane\'s workload identity is its NOMAD_TOKEN')
  t.notMatch(JSON.stringify(cpTask.template), /NOMAD_TOKEN|nomad_token/, 'and no token is rendered from a variable')
  const ns = main.resource.nomad_namespace
  t.same(ns.writ[0].capabilities, [{ enabled_task_drivers: ['docker', 'exec', 'raw_exec'] }], 'the writ namespace allows raw_exec')
  t.same(ns.raw_exec_denied[0].capabilities, [{ disabled_task_drivers: ['raw_exec'] }], 'the other namespaces refuse it')
  t.equal(ns.raw_exec_denied[0].for_each, '${toset(var.raw_exec_denied_namespaces)}')
  const tfVars = (await hcl(join(tfDir, 'variables.tf'))).variable
  t.same(tfVars.raw_exec_denied_namespaces[0].default, ['default'], 'by default the default namespace refuses raw_exec')
  const outputs = (await hcl(join(tfDir, 'outputs.tf'))).output
  for (const o of ['control_plane_url', 'namespace', 'node_runner_policy', 'control_plane_policy']) t.ok(outputs[o], `output ${o}`)
  t.notMatch(JSON.stringify(outputs), 'secret_id', 'no output holds a secret')
})

t.test('terraform/README.md "Residual reach" says what each right of the runner\'s identity exposes', async (t) => {
  const readme = readFileSync(join(tfDir, 'README.md'), 'utf8')
  const reach = /\*\*Residual reach\*\*([\s\S]*?)\n\n/.exec(readme)?.[1] ?? ''
  const main = await hcl(join(tfDir, 'main.tf'))
  const caps = JSON.parse(/jsonencode\((\[[^\]]*\])\)/.exec(String(main.locals[0].runner_namespace_rules))?.[1] ?? '[]') as string[]
  t.same(caps.sort(), ['alloc-lifecycle', 'read-job'], 'the runner\'s namespace capabilities')
  const what: Record<string, RegExp> = {
    'alloc-lifecycle': /`alloc-lifecycle`[^.;]*stop, restart or signal\s+\*\*any\*\* allocation/,
    'read-job': /`read-job`[^;]*read \*\*every\*\* job\s+specification[^;]*`env`[^;]*`template` data[^;]*every\s+allocation/,
  }
  for (const c of caps) t.match(reach, what[c] ?? c, `Residual reach: what ${c} in managed_namespaces exposes`)
  t.match(reach, /`node write`[^;]*\*\*any\*\* node/, 'Residual reach: node write')
})

t.test('every file(...) path exists', async (t) => {
  let count = 0
  for (const f of hclFiles.filter((x) => x.endsWith('.tf'))) {
    const doc = await hcl(f)
    const locals: Record<string, string> = {}
    for (const block of (doc.locals ?? []) as Json[]) for (const [k, v] of Object.entries(block)) if (typeof v === 'string') locals[k] = v
    const text = JSON.stringify(doc)
    for (const m of text.matchAll(/file\(\\"(.*?)\\"\)/g)) {
      let p = (m[1] as string)
      for (let i = 0; i < 3; i++) p = p.replace(/\$\{local\.([a-z_]+)\}/g, (_, k: string) => locals[k] ?? `<unknown local ${k}>`)
      p = p.replace(/\$\{path\.module\}/g, dirname(f))
      count++
      t.ok(existsSync(p), `${rel(f)}: file("${m[1]}") → ${relative(root, p)} exists`)
    }
  }
  t.ok(count >= 8, `checked ${count} file() calls`)
})

// Secret literals: anything here would be a leak.
const SECRET_PATTERNS: Array<[string, RegExp]> = [
  ['PEM private key block', /-----BEGIN [A-Z ]*PRIVATE KEY-----\s*\n[A-Za-z0-9+/=\s]{20,}-----END/],
  ['NATS nkey seed', /\bS[UAO][A-Z2-7]{56}\b/],
  ['Slack bot/user token', /xox[abposr]-[A-Za-z0-9-]{10,}/],
  ['Slack webhook URL with a token', /https:\/\/hooks\.slack\.com\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9]+/],
  ['JWT', /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/],
  ['Nomad/Vault token UUID assigned', /(token|secret)[a-z_]*\s*[=:]\s*"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"/i],
]
t.test('no secret literal in any file under jobs/ or terraform/', async (t) => {
  for (const f of allFiles) {
    const text = readFileSync(f, 'utf8')
    for (const [what, re] of SECRET_PATTERNS) t.notMatch(text, re, `${rel(f)}: no ${what}`)
    // Long hex or base64 runs: a key or token pasted in. All-one-character
    // runs are placeholders (the example's 64 zeros).
    for (const m of text.matchAll(/[A-Fa-f0-9]{40,}|[A-Za-z0-9+/]{48,}={0,2}/g)) {
      const s = m[0]
      if (/^(.)\1*$/.test(s)) continue
      if (/^[a-z_/.-]+$/i.test(s) && !/\d/.test(s)) continue // long words/paths, not tokens
      t.fail(`${rel(f)}: token-like literal ${s.slice(0, 12)}…`)
    }
  }
  t.pass('scanned')
})

t.test('jobs read their secrets from Nomad Variables, never inline', async (t) => {
  const cp = onlyJob(await hcl(join(jobsDir, 'writ-control-plane.nomad.hcl'))).job
  const text = readFileSync(join(jobsDir, 'writ-control-plane.nomad.hcl'), 'utf8')
  for (const item of ['signing_key_pem', 'slack_webhook_url', 'portal_session_key', 'principals_yaml', 'nats_creds']) {
    t.match(text, new RegExp(`nomadVar "nomad/jobs/writ-control-plane" \\}\\}[^\\n]*\\.${item}|\\.${item} \\}\\}`), `control plane: ${item} from nomadVar`)
  }
  const g = groups(cp)[0]!.group
  t.match(JSON.stringify(g.count), 'var.instance_count')
  const countDefault = (await hcl(join(jobsDir, 'writ-control-plane.nomad.hcl'))).variable.instance_count[0].default
  t.ok(countDefault >= 2, `control plane runs ≥2 instances by default (${countDefault})`)
  const svc = g.service[0]
  t.equal(svc.check[0].path, '/readyz', 'health check on /readyz')
  for (const { task } of tasks(g)) {
    for (const tpl of task.template as Json[]) {
      if (String(tpl.destination).startsWith('secrets/') && /nomadVar/.test(String(tpl.data))) t.pass(`${tpl.destination} rendered from nomadVar`)
    }
  }
})

t.test('artifacts are the release executables and packs, each checksum-verified', async (t) => {
  const names = new Set<string>()
  for (const f of jobFiles) {
    const { job } = onlyJob(await hcl(f))
    for (const { group } of groups(job)) {
      for (const { task } of tasks(group)) {
        for (const a of (task.artifact ?? []) as Json[]) {
          const file = String(a.source).split('/').pop() as string
          names.add(file.replace(/\$\{var\.writ_version\}/, '<version>'))
          t.match(a.options?.[0]?.checksum, /^sha256:\$\{var\.[a-z_]+_sha256\}$/, `${rel(f)}: ${file} has a sha256 checksum from a variable`)
        }
      }
    }
  }
  t.same([...names].sort(), ['writ-linux-x64', 'writ-node-runner-linux-x64', 'writ-packs-<version>.tar.gz'])
})

t.test('node runner: a raw_exec host agent in the writ namespace, its argv and env in plain sight, workload identity on the Task API', async (t) => {
  const doc = await hcl(join(jobsDir, 'writ-node-runner.nomad.hcl'))
  const { job } = onlyJob(doc)
  t.equal(job.namespace, '${var.namespace}', 'runs in the writ namespace')
  t.equal(doc.variable.namespace[0].default, 'writ')
  const task = tasks(groups(job)[0]!.group)[0]!.task
  t.equal(task.driver, 'raw_exec', 'the host agent runs on the host (raw_exec), not in a container')
  t.notOk('user' in task, 'no user: the stock actions need root (dmesg, multipath, blkid, the Docker socket)')
  const cfg = task.config[0]
  t.same(Object.keys(cfg).sort(), ['args', 'command'], 'config is exactly command + args: no wrapper, no image, no entrypoint')
  t.equal(cfg.command, 'local/bin/writ-node-runner', 'the release executable from the artifact')
  const args = cfg.args as string[]
  t.equal(args[0], 'run')
  for (const flag of ['--packs', '--trusted-keys', '--nats-creds', '--journal', '--docker-socket', '--metrics-listen']) t.ok(args.includes(flag), `runner gets ${flag}`)
  t.notOk(args.includes('--allow-shell-packs'), 'shell packs stay off')
  t.equal(args[args.indexOf('--packs') + 1], '${NOMAD_TASK_DIR}/packs', 'packs from the artifact, by absolute task path')
  t.equal(args[args.indexOf('--trusted-keys') + 1], '${NOMAD_SECRETS_DIR}/trusted-keys.pem')
  const env = task.env[0]
  t.equal(env.NODE_ID, '${node.unique.id}', 'the node id is Nomad\'s')
  t.equal(env.NODE_NAME, '${node.unique.name}')
  t.equal(env.NOMAD_ADDR, 'unix://${NOMAD_SECRETS_DIR}/api.sock', 'Nomad API through the Task API socket')
  t.same(task.identity, [{ env: true, file: false }], 'the workload identity is NOMAD_TOKEN, nothing on disk')
  t.notMatch(JSON.stringify(task.template), 'nomad_token', 'no long-lived Nomad token is rendered')
  t.equal(task.kill_timeout, '45s', 'kill_timeout 45s > the 30 s drain')
  t.notOk('kill_signal' in task, 'raw_exec\'s default stop signal (SIGINT) is what the runner drains on')
})

t.test('democratic-csi node plugin: upstream layout plus the guard in front of mkfs', async (t) => {
  const { job } = onlyJob(await hcl(join(jobsDir, 'democratic-csi-node.nomad.hcl')))
  const task = tasks(groups(job)[0]!.group)[0]!.task
  const env = task.env[0]
  t.equal(env.FILESYSTEM_TYPE_DETECTION_STRATEGY, 'blkid')
  t.equal(task.kill_timeout, '60s')
  t.equal(task.csi_plugin[0].type, 'node')
  t.equal(task.csi_plugin[0].mount_dir, '/csi')
  const cfg = task.config[0]
  t.equal(cfg.privileged, true)
  t.equal(cfg.network_mode, 'host')
  t.equal(cfg.ipc_mode, 'host')
  const mounts = cfg.mount as Json[]
  const byTarget = (target: string): Json => mounts.find((m) => m.target === target)
  t.equal(byTarget('/host')?.source, '/', 'host root at /host (iscsiadm/multipath wrappers chroot there)')
  t.same(byTarget('/run/udev'), { type: 'bind', source: '/run/udev', target: '/run/udev', readonly: true }, '/run/udev read-only')
  for (const tool of ['mkfs.ext4', 'mkfs.xfs']) {
    t.equal(byTarget(`/usr/local/sbin/${tool}`)?.source, 'local/writ/mkfs-guard.sh', `${tool} on PATH is the guard`)
  }
  const path = String(env.PATH).split(':')
  t.ok(path.indexOf('/usr/local/sbin') >= 0 && path.indexOf('/usr/local/sbin') < path.indexOf('/usr/sbin'), 'guard dir before the real mkfs on PATH')
  t.equal(env.MKFS_GUARD_REAL_DIR, '/usr/sbin')
  const guardTpl = (task.template as Json[]).find((x) => x.destination === 'local/writ/mkfs-guard.sh')
  t.equal(guardTpl?.data, '${var.mkfs_guard_script}')
  t.equal(guardTpl?.perms, '0755')
})

t.test('multipath watchdog: system job with the documented flags and host access', async (t) => {
  const { job } = onlyJob(await hcl(join(jobsDir, 'multipath-watchdog.nomad.hcl')))
  const task = tasks(groups(job)[0]!.group)[0]!.task
  const args = (task.config[0].args as string[])
  t.same(args.slice(0, 2), ['watchdog', 'multipath'])
  for (const flag of ['--interval', '--kick-timeout', '--metrics-listen', '--textfile-dir', '--nats-url', '--nats-creds', '--nats-ca', '--nats-tls-server-name', '--node-id', '--node-name', '--device-dir']) {
    t.ok(args.includes(flag), `watchdog gets ${flag}`)
  }
  const vars = (await hcl(join(jobsDir, 'multipath-watchdog.nomad.hcl'))).variable
  t.equal(vars.interval[0].default, '30s', 'every 30 s by default')
  const targets = (task.config[0].mount as Json[]).map((m) => m.target)
  for (const tool of ['multipath', 'multipathd', 'dmsetup']) t.ok(targets.includes(`/usr/local/sbin/${tool}`), `${tool} runs the host's binary`)
  t.equal(task.config[0].network_mode, 'host', 'host network: multipathd\'s abstract socket exists only there')
  t.notMatch(JSON.stringify(task.config[0]), 'multipathd.socket', 'no bind of the socket path (the chroot reaches /host/run; a missing path would fail the task)')
})

/** Nomad's server defaults for the settings the snippet touches (nomad/config.go DefaultConfig). */
const NOMAD_SERVER_DEFAULTS: Record<string, string> = { csi_volume_claim_gc_interval: '5m', csi_volume_claim_gc_threshold: '5m' }

/** [setting, default it is said to have]: each `default "<duration>"` in a paragraph, paired with the setting named nearest to it. */
function claimedDefaults(paragraphs: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const p of paragraphs) {
    const names = Object.keys(NOMAD_SERVER_DEFAULTS).flatMap((k) => [...p.matchAll(new RegExp(k, 'g'))].map((m) => ({ k, at: m.index })))
    for (const m of p.matchAll(/default\W{0,4}"(\d+[smh])"/g)) {
      const nearest = names.sort((a, b) => Math.abs(a.at - m.index) - Math.abs(b.at - m.index))[0]
      if (nearest) out.push([nearest.k, m[1] as string])
    }
  }
  return out
}

t.test('agent settings ship as documented snippets, not jobs', async (t) => {
  const server = await hcl(join(tfDir, 'nomad-server-snippets/csi-claim-gc.hcl'))
  t.equal(server.server[0].csi_volume_claim_gc_interval, '1m')
  t.same(Object.keys(server.server[0]), ['csi_volume_claim_gc_interval'], 'the server snippet changes the claim GC interval and nothing else')
  // Comment paragraphs of the snippet, and the README's paragraphs: every default they quote is Nomad's.
  const snippetText = readFileSync(join(tfDir, 'nomad-server-snippets/csi-claim-gc.hcl'), 'utf8')
  const snippetParagraphs: string[] = ['']
  for (const line of snippetText.split('\n')) {
    const comment = /^\s*# ?(.*)$/.exec(line)?.[1]
    if (comment !== undefined && comment !== '') snippetParagraphs[snippetParagraphs.length - 1] += ` ${comment}`
    else snippetParagraphs.push(line, '')
  }
  const readmeParagraphs = readFileSync(join(tfDir, 'README.md'), 'utf8').split(/\n\s*\n|\n(?=- )/)
  const claims = claimedDefaults([...snippetParagraphs, ...readmeParagraphs])
  t.ok(claims.some(([k]) => k === 'csi_volume_claim_gc_interval'), 'the README quotes the interval\'s default')
  for (const [setting, said] of claims) t.equal(said, NOMAD_SERVER_DEFAULTS[setting], `${setting}: the default quoted ("${said}") is Nomad's`)
  const client = await hcl(join(tfDir, 'nomad-client-snippets/client.hcl'))
  t.equal(client.client[0].max_kill_timeout, '60s', 'max_kill_timeout allows the 60 s kill_timeout')
  const docker = client.plugin.docker[0].config[0]
  t.equal(docker.allow_privileged, true)
  t.equal(docker.volumes[0].enabled, true)
  t.equal(client.plugin.raw_exec[0].config[0].enabled, true, 'raw_exec enabled for the runner (confined to the writ namespace by the module)')
  const readme = readFileSync(join(tfDir, 'README.md'), 'utf8')
  for (const s of ['csi_volume_claim_gc_interval', 'max_kill_timeout', 'allow_privileged', 'raw_exec_denied_namespaces', 'nomad-server-snippets/csi-claim-gc.hcl', 'writ-node-runner-linux-x64', 'writ-linux-x64', 'writ-packs-']) {
    t.match(readme, s, `README covers ${s}`)
  }
})

const WATCHDOG_METRICS = new Set([
  'writ_multipath_map_stuck', 'writ_multipath_map_stuck_seconds', 'writ_multipath_kicks_total',
  'writ_multipath_kick_failures_total', 'writ_multipath_kick_hung', 'writ_multipath_maps',
  'writ_multipath_pass_errors_total', 'writ_multipath_last_success_timestamp_seconds',
  'node_textfile_mtime_seconds',
])
const PROMQL_FUNCS = new Set(['time', 'absent', 'max', 'min', 'sum', 'count', 'avg', 'increase', 'rate', 'changes', 'max_over_time', 'min_over_time'])
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'on', 'without', 'ignoring', 'group_left', 'group_right', 'bool', 'offset'])

/** Metric names an expression selects (label matchers, ranges, grouping and functions removed). */
function metricNames(expr: string): { metrics: string[], funcs: string[] } {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  e = e.replace(/\{[^}]*\}/g, '').replace(/\[[^\]]*\]/g, '')
  e = e.replace(/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const funcs = [...e.matchAll(/\b([a-z_]+)\s*\(/g)].map((m) => m[1] as string)
  e = e.replace(/\b[a-z_]+\s*\(/g, '(')
  const metrics = [...e.matchAll(/\b([A-Za-z_:][A-Za-z0-9_:]*)\b/g)].map((m) => m[1] as string)
    .filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w))
  return { metrics, funcs }
}

t.test('alerts: a valid rule file using only the watchdog metric names', async (t) => {
  const doc = parseYaml(readFileSync(join(tfDir, 'alerts/multipath.yaml'), 'utf8'))
  t.ok(Array.isArray(doc.groups) && doc.groups.length > 0, 'groups: [...]')
  const alerts = new Map<string, Json>()
  for (const g of doc.groups) {
    t.type(g.name, 'string', 'group has a name')
    t.same(Object.keys(g).sort(), ['name', 'rules'])
    for (const r of g.rules) {
      t.same(Object.keys(r).filter((k) => !['alert', 'expr', 'for', 'labels', 'annotations'].includes(k)), [], `${r.alert}: only rule fields`)
      t.type(r.alert, 'string')
      t.type(r.expr, 'string')
      t.match(r.for, /^\d+[smh]$/, `${r.alert}: for is a duration`)
      t.match(r.labels?.severity, /^(page|warning)$/, `${r.alert}: severity label`)
      t.type(r.annotations?.summary, 'string', `${r.alert}: summary annotation`)
      const { metrics, funcs } = metricNames(r.expr)
      t.ok(metrics.length > 0, `${r.alert}: selects a metric`)
      for (const m of metrics) t.ok(WATCHDOG_METRICS.has(m), `${r.alert}: ${m} is a metric the watchdog (or node_exporter's textfile collector) exports`)
      for (const f of funcs) t.ok(PROMQL_FUNCS.has(f), `${r.alert}: ${f}() is a known PromQL function`)
      alerts.set(r.alert, r)
    }
  }
  const exprs = [...alerts.values()].map((r) => `${r.labels.severity}: ${r.expr}`).join('\n')
  t.match(exprs, /page: .*writ_multipath_map_stuck/, 'pages on a stuck map')
  t.match(exprs, /page: time\(\) - max by \(instance\) \(writ_multipath_last_success_timestamp_seconds\) > 120/, 'pages when the watchdog has not reported for 2 minutes')
  t.match(exprs, /page: absent\(writ_multipath_last_success_timestamp_seconds\)/, 'pages when no watchdog reports at all')
  t.match(exprs, /page: time\(\) - node_textfile_mtime_seconds\{file="writ_multipath.prom"\} > 120/, 'pages on a stale textfile')
  t.match(exprs, /warning: .*writ_multipath_kick_failures_total/, 'warns on failing kicks')
  const stuck = [...alerts.values()].find((r) => /map_stuck/.test(r.expr))
  t.match(stuck?.expr, /> 120/, 'stuck means more than 2 minutes')
  t.same(metricNames('sum by (instance, map) (increase(writ_multipath_kicks_total{map="a"}[5m])) > 0'), { metrics: ['writ_multipath_kicks_total'], funcs: ['sum', 'increase'] }, 'the metric-name extractor itself works')
})

t.test('shell scripts: POSIX sh syntax, set -eu, no eval', async (t) => {
  const scripts = allFiles.filter((f) => f.endsWith('.sh'))
  t.ok(scripts.length >= 4)
  for (const f of scripts) {
    const text = readFileSync(f, 'utf8')
    const res = spawnSync('sh', ['-n', f], { encoding: 'utf8' })
    t.equal(res.status, 0, `${rel(f)}: sh -n ${res.stderr}`)
    t.notMatch(text, /(^|[;&|\s])eval\s/m, `${rel(f)}: no eval`)
    if (text.startsWith('#!')) t.match(text, /^set -eu$/m, `${rel(f)}: set -eu`)
  }
  if (!onPath('shellcheck')) {
    t.skip('shellcheck not on PATH — skipped shellcheck', () => {})
  } else {
    const res = spawnSync('shellcheck', ['-x', '-s', 'sh', ...scripts], { encoding: 'utf8', cwd: root })
    t.equal(res.status, 0, `shellcheck clean${res.stdout ? `:\n${res.stdout}` : ''}`)
  }
})

function onPath(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0
}

t.test('terraform fmt -check (module, example, and the job files in HCL style)', async (t) => {
  if (!onPath('terraform')) { t.skip('terraform not on PATH — skipped terraform fmt -check', () => {}); return }
  const res = spawnSync('terraform', ['fmt', '-check', '-recursive', '-diff', tfDir], { encoding: 'utf8' })
  t.equal(res.status, 0, `terraform fmt -check terraform/\n${res.stdout}`)
  // fmt only accepts .tf names; the job files are the same HCL syntax.
  const tmp = mkdtempSync(join(tmpdir(), 'writ-fmt-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  for (const f of jobFiles) {
    const copy = join(tmp, `${f.slice(jobsDir.length + 1)}.tf`)
    writeFileSync(copy, readFileSync(f))
    const r = spawnSync('terraform', ['fmt', '-check', '-diff', copy], { encoding: 'utf8' })
    t.equal(r.status, 0, `${rel(f)} is fmt-clean\n${r.stdout}`)
  }
})

t.test('terraform validate', async (t) => {
  if (!onPath('terraform')) { t.skip('terraform not on PATH — skipped terraform validate', () => {}); return }
  // A copy with ../jobs beside it, so the repository gets no .terraform/ or lock file.
  const tmp = mkdtempSync(join(tmpdir(), 'writ-tfv-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  cpSync(tfDir, join(tmp, 'terraform'), { recursive: true })
  cpSync(jobsDir, join(tmp, 'jobs'), { recursive: true })
  const cwd = join(tmp, 'terraform')
  const env = { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' }
  const init = spawnSync('terraform', ['init', '-backend=false', '-input=false', '-no-color'], { cwd, encoding: 'utf8', env, timeout: 120_000 })
  if (init.status !== 0) {
    const why = (init.stderr || init.stdout).split('\n').find((l) => /Error|error/.test(l))?.trim() ?? 'terraform init failed'
    t.comment(`terraform init could not install the hashicorp/nomad provider: ${why}`)
    t.skip('terraform validate skipped — the hashicorp/nomad provider cannot be installed here (no registry access); fmt and the structural checks above still ran', () => {})
    return
  }
  const v = spawnSync('terraform', ['validate', '-no-color'], { cwd, encoding: 'utf8', env })
  t.equal(v.status, 0, `terraform validate\n${v.stdout}${v.stderr}`)
})

t.test('nomad job validate', async (t) => {
  if (!onPath('nomad')) { t.skip('nomad not on PATH — skipped nomad job validate', () => {}); return }
  const required: Record<string, string> = {
    release_base_url: 'https://releases.example.internal/writ', writ_version: '0.1.0',
    control_plane_sha256: '0'.repeat(64), runner_sha256: '0'.repeat(64), packs_sha256: '0'.repeat(64),
    public_url: 'https://writ.example.internal', driver_config_yaml: 'driver: freenas-iscsi',
    mkfs_guard_script: '#!/bin/sh', blank_proof_lib: '#', host_tool_script: '#!/bin/sh', nats_ca_pem: '-----BEGIN CERTIFICATE-----',
  }
  for (const f of jobFiles) {
    const declared = (await hcl(f)).variable ?? {}
    const args = ['job', 'validate']
    for (const [k, v] of Object.entries(required)) if (k in declared) args.push('-var', `${k}=${v}`)
    const r = spawnSync('nomad', [...args, f], { encoding: 'utf8' })
    t.equal(r.status, 0, `nomad job validate ${rel(f)}\n${r.stdout}${r.stderr}`)
  }
})
