/**
 * The deployment files as an operator would meet them: every .hcl/.tf parses
 * with the real HCL parser (@cdktf/hcl2json, HashiCorp's hcl in WebAssembly),
 * the jobs have the types the design says, every variable is declared and
 * described, no secret is written into any file, file() paths exist, and the
 * artifacts are checksum-verified. The jobs' host access is in
 * deploy-jobs.test.ts; alert rules, scripts and the HashiCorp CLIs in
 * deploy-tooling.test.ts.
 */
import t from 'tap'
import { parse as parseHcl } from '@cdktf/hcl2json'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { EXPECTED_JOBS, allFiles, groups, hcl, hclFiles, jobFiles, jobsDir, onlyJob, rel, root, tasks, tfDir, varRefs, type Json } from './helpers/deploy-files.js'

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

