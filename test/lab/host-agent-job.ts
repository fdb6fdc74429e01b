/**
 * How jobs/writ-node-runner.nomad.hcl starts the runner, read from the job
 * file itself with HashiCorp's HCL parser (@cdktf/hcl2json), so the lab runs
 * whatever the job says today: the task's command line (docker: entrypoint +
 * command + args; raw_exec/exec: command + args), its env block, the env
 * templates, the files its artifacts and templates put in the task folder.
 * Nomad interpolations are filled in with lab values; one the lab does not
 * know is an error naming it, never a silent blank.
 *
 * Not emulated: the container itself (the guest has none: the runner sees
 * the guest's filesystem, its mounts are listed but not made) and the
 * driver's capability set; job-level privileges are the deploy's to test.
 */
import { readFileSync } from 'node:fs'
import { posix } from 'node:path'
import { parse as parseHcl } from '@cdktf/hcl2json'

type Json = any // hcl2json output is untyped JSON by nature

/** Values the lab gives to what Nomad would fill in. */
export interface LabNomadValues {
  nodeId: string
  nodeName: string
  nodeIp: string
  datacenter: string
  /** Job variables without a default (or to override one). */
  vars: Record<string, string>
  /** Services the templates look up with nomadService, one instance each. */
  services: Record<string, { address: string, port: number }>
  /** Nomad Variables the templates read with nomadVar: path → key → value. */
  variables: Record<string, Record<string, string>>
  /** What Nomad puts in NOMAD_TOKEN for `identity { env = true }` (the workload identity). */
  workloadIdentityToken: string
}

export interface HostAgentFile {
  /** Absolute path in the guest. */
  path: string
  /** What Nomad puts there. */
  kind: 'artifact' | 'template'
  /** artifact: the artifact's source URL (after interpolation); template: the rendered text. */
  source?: string
  content?: string
  /** For artifacts: go-getter unpacks archives; `mode = "file"` keeps a file as it is. */
  unpack?: boolean
  checksum?: string
}

export interface HostAgent {
  driver: string
  task: string
  /** The task folder (Nomad's task dir; "/" inside a docker container). */
  taskDir: string
  argv: string[]
  env: Record<string, string>
  files: HostAgentFile[]
  /** Static host ports of the group's network block, by label. */
  ports: Record<string, number>
  /** Bind mounts the job asks for (not made in the guest; see above). */
  mounts: Array<{ source: string, target: string, readonly: boolean }>
}

export class HostAgentJobError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'HostAgentJobError'
  }
}

const first = <T>(v: T | T[] | undefined): T | undefined => (Array.isArray(v) ? v[0] : v)
const blocks = (v: Json): Json[] => (v === undefined ? [] : Array.isArray(v) ? v : [v])

/** `${...}` interpolation with the values at hand; unknown names are errors. */
function interpolator(lookup: (name: string) => string | undefined, where: string): (s: string) => string {
  return (s) => s.replace(/\$\{([^}]+)\}/g, (_m, expr: string) => {
    const v = lookup(expr.trim())
    if (v === undefined) throw new HostAgentJobError(`${where}: the lab has no value for \${${expr}} (teach test/lab/host-agent-job.ts what Nomad puts there)`)
    return v
  })
}

/**
 * Renders the consul-template subset the job's templates use: `nomadService`
 * ranges and `if nomadService` (is one registered), `with nomadVar`, `.key`, an optional item's `.key.Value` and
 * `if .key.Value` (empty when the variable has no such item), `if $i`,
 * `$s.Address`/`$s.Port`, `env "NAME"` from the task's runtime environment,
 * and the `{{-`/`-}}` whitespace trims. Anything else is refused by name.
 */
export function renderTemplate(text: string, values: LabNomadValues, where: string, runtimeEnv: Record<string, string> = {}): string {
  const tokens: Array<{ text: string } | { action: string }> = []
  const re = /\{\{(-?)\s*(.*?)\s*(-?)\}\}/gs
  let last = 0
  let trimNext = false
  for (let m = re.exec(text); m; m = re.exec(text)) {
    let before = text.slice(last, m.index)
    if (trimNext) before = before.replace(/^\s+/, '')
    if (m[1] === '-') before = before.replace(/\s+$/, '')
    tokens.push({ text: before })
    tokens.push({ action: m[2] as string })
    trimNext = m[3] === '-'
    last = m.index + m[0].length
  }
  let tail = text.slice(last)
  if (trimNext) tail = tail.replace(/^\s+/, '')
  tokens.push({ text: tail })

  let pos = 0
  const render = (scope: Record<string, unknown>, until: 'end' | 'top'): string => {
    let out = ''
    while (pos < tokens.length) {
      const tok = tokens[pos++] as { text: string } | { action: string }
      if ('text' in tok) { out += tok.text; continue }
      const a = tok.action
      let m: RegExpExecArray | null
      if (a === 'end') { if (until === 'end') return out; throw new HostAgentJobError(`${where}: unexpected {{ end }}`) }
      if ((m = /^range \$(\w+), \$(\w+) := nomadService "([^"]+)"$/.exec(a))) {
        const svc = values.services[m[3] as string]
        if (!svc) throw new HostAgentJobError(`${where}: the lab runs no service "${m[3]}" for nomadService`)
        out += render({ ...scope, [`$${m[1]}`]: 0, [`$${m[2]}`]: { Address: svc.address, Port: svc.port } }, 'end')
      } else if ((m = /^if nomadService "([^"]+)"$/.exec(a))) {
        const body = render(scope, 'end')
        if (values.services[m[1] as string]) out += body
      } else if ((m = /^with nomadVar "([^"]+)"$/.exec(a))) {
        const v = values.variables[m[1] as string]
        if (!v) throw new HostAgentJobError(`${where}: the lab has no Nomad Variable "${m[1]}"`)
        out += render({ ...scope, '.': v }, 'end')
      } else if ((m = /^if \$(\w+)$/.exec(a))) {
        const body = render(scope, 'end')
        if (scope[`$${m[1]}`]) out += body
      } else if ((m = /^if \.(\w+)\.Value$/.exec(a))) {
        const body = render(scope, 'end')
        if ((scope['.'] as Record<string, string> | undefined)?.[m[1] as string]) out += body
      } else if ((m = /^\.(\w+)\.Value$/.exec(a))) {
        out += (scope['.'] as Record<string, string> | undefined)?.[m[1] as string] ?? ''
      } else if ((m = /^env "(\w+)"$/.exec(a))) {
        const v = runtimeEnv[m[1] as string]
        if (v === undefined) throw new HostAgentJobError(`${where}: the lab has no value for {{ env "${m[1]}" }}`)
        out += v
      } else if ((m = /^\$(\w+)\.(\w+)$/.exec(a))) {
        const obj = scope[`$${m[1]}`] as Record<string, unknown> | undefined
        if (!obj || !(m[2] as string in obj)) throw new HostAgentJobError(`${where}: unknown {{ ${a} }}`)
        out += String(obj[m[2] as string])
      } else if ((m = /^\.(\w+)$/.exec(a))) {
        const dot = scope['.'] as Record<string, string> | undefined
        const v = dot?.[m[1] as string]
        if (v === undefined) throw new HostAgentJobError(`${where}: the lab's Nomad Variable has no key "${m[1]}"`)
        out += v
      } else {
        throw new HostAgentJobError(`${where}: the lab cannot render {{ ${a} }}`)
      }
    }
    if (until === 'end') throw new HostAgentJobError(`${where}: missing {{ end }}`)
    return out
  }
  return render({}, 'top')
}

function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (m) env[m[1] as string] = (m[2] as string).replace(/^"(.*)"$/, '$1')
  }
  return env
}

/**
 * The runner task of the job file, as Nomad would start it on the lab's node.
 * @throws {HostAgentJobError} naming what the lab cannot reproduce.
 */
export async function hostAgentFromJob(jobFile: string, values: LabNomadValues): Promise<HostAgent> {
  const doc: Json = await parseHcl(jobFile, readFileSync(jobFile, 'utf8'))
  const varDefaults: Record<string, string> = {}
  for (const [name, defs] of Object.entries<Json>(doc.variable ?? {})) {
    const d = first(defs)?.default
    if (d !== undefined) varDefaults[name] = typeof d === 'string' ? d : JSON.stringify(d)
  }
  const jobs = Object.entries<Json>(doc.job ?? {})
  if (jobs.length !== 1) throw new HostAgentJobError(`${jobFile}: expected one job, found ${jobs.length}`)
  const [jobName, jobBody] = jobs[0] as [string, Json]
  const job = first(jobBody)
  // The runner task: the one whose command runs `writ-node-runner run`.
  let found: { group: string, groupBody: Json, task: string, body: Json } | undefined
  for (const [group, groupDefs] of Object.entries<Json>(job.group ?? {})) {
    const groupBody = first(groupDefs)
    for (const [task, taskDefs] of Object.entries<Json>(groupBody.task ?? {})) {
      const body = first(taskDefs)
      const cfg = first(body.config) ?? {}
      const words = [cfg.command, ...(cfg.args ?? [])].map(String)
      if (words.some((w) => /writ-node-runner/.test(w)) && words.includes('run')) found = { group, groupBody, task, body }
    }
  }
  if (!found) throw new HostAgentJobError(`${jobFile}: no task runs "writ-node-runner run"`)
  const { group, groupBody, task, body } = found
  const driver = String(body.driver)
  const cfg = first(body.config) ?? {}

  const ports: Record<string, number> = {}
  const vars = { ...varDefaults, ...values.vars }
  const varOf = (expr: string): string | undefined => {
    const m = /^var\.(\w+)$/.exec(expr)
    return m ? vars[m[1] as string] : undefined
  }
  for (const net of blocks(groupBody.network)) {
    for (const [label, defs] of Object.entries<Json>(net.port ?? {})) {
      const stat = first(defs)?.static
      if (stat === undefined) throw new HostAgentJobError(`${jobFile}: port "${label}" is dynamic; the lab forwards static ports only`)
      const n = Number(typeof stat === 'string' ? interpolator(varOf, `port ${label}`)(stat) : stat)
      ports[label] = n
    }
  }

  // Nomad's task folder: docker mounts it at /local, /secrets, /alloc; other drivers run in <data_dir>/alloc/<id>/<task>.
  const allocId = '6c1ab000-0000-4000-8000-00000000a110'
  const taskDir = driver === 'docker' ? '/' : posix.join(vars.nomad_data_dir ?? '/opt/nomad/data', 'alloc', allocId, task)
  const runtime: Record<string, string> = {
    NOMAD_TASK_DIR: posix.join(taskDir, 'local'), NOMAD_SECRETS_DIR: posix.join(taskDir, 'secrets'),
    NOMAD_ALLOC_DIR: driver === 'docker' ? '/alloc' : posix.join(posix.dirname(taskDir), 'alloc'),
    NOMAD_ALLOC_ID: allocId, NOMAD_SHORT_ALLOC_ID: allocId.slice(0, 8), NOMAD_ALLOC_NAME: `${jobName}.${group}[0]`, NOMAD_ALLOC_INDEX: '0',
    NOMAD_TASK_NAME: task, NOMAD_GROUP_NAME: group, NOMAD_JOB_ID: jobName, NOMAD_JOB_NAME: jobName,
    NOMAD_NAMESPACE: job.namespace === undefined ? 'default' : interpolator(varOf, 'job namespace')(String(job.namespace)),
    NOMAD_DC: values.datacenter, NOMAD_REGION: 'global',
  }
  for (const [label, port] of Object.entries(ports)) {
    Object.assign(runtime, { [`NOMAD_PORT_${label}`]: String(port), [`NOMAD_HOST_PORT_${label}`]: String(port), [`NOMAD_IP_${label}`]: values.nodeIp, [`NOMAD_ADDR_${label}`]: `${values.nodeIp}:${port}` })
  }
  const nodeAttr: Record<string, string> = {
    'node.unique.id': values.nodeId, 'node.unique.name': values.nodeName, 'node.datacenter': values.datacenter,
    'attr.unique.network.ip-address': values.nodeIp, 'attr.unique.hostname': values.nodeName,
  }
  const baseLookup = (expr: string): string | undefined => varOf(expr) ?? nodeAttr[expr] ?? runtime[expr]
  const abs = (p: string): string => (posix.isAbsolute(p) ? p : posix.join(taskDir, p))

  // Templates: env ones feed the environment (and, like Nomad, config interpolation); the rest are files.
  const files: HostAgentFile[] = []
  const templateEnv: Record<string, string> = {}
  for (const tpl of blocks(body.template)) {
    const dest = interpolator(baseLookup, `template ${tpl.destination}`)(String(tpl.destination))
    const text = renderTemplate(String(tpl.data ?? ''), values, `template ${tpl.destination}`, runtime)
    if (tpl.env === true) Object.assign(templateEnv, parseEnvFile(text))
    else files.push({ path: abs(dest), kind: 'template', content: text })
  }
  const taskEnv: Record<string, string> = {}
  const envBlock = first(body.env) ?? {}
  const envLookup = (expr: string): string | undefined => baseLookup(expr)
  for (const [k, v] of Object.entries<Json>(envBlock)) taskEnv[k] = interpolator(envLookup, `env ${k}`)(String(v))
  // identity { env = true }: the workload identity's token in NOMAD_TOKEN.
  const identity = blocks(body.identity).find((i: Json) => i.name === undefined || i.name === 'default')
  if (identity?.env === true) runtime.NOMAD_TOKEN = values.workloadIdentityToken
  const env = { ...runtime, ...templateEnv, ...taskEnv }
  const configLookup = (expr: string): string | undefined => baseLookup(expr) ?? env[expr]
  const fill = interpolator(configLookup, `task "${task}" config`)

  for (const art of blocks(body.artifact)) {
    const checksum = first(art.options)?.checksum
    files.push({
      path: abs(fill(String(art.destination))), kind: 'artifact', source: fill(String(art.source)),
      unpack: art.mode !== 'file', ...(checksum !== undefined ? { checksum: fill(String(checksum)) } : {}),
    })
  }
  const argv = [
    ...(driver === 'docker' ? (cfg.entrypoint ?? []).map((w: unknown) => fill(String(w))) : []),
    fill(String(cfg.command)),
    ...(cfg.args ?? []).map((w: unknown) => fill(String(w))),
  ]
  const mounts = blocks(cfg.mount).map((m: Json) => ({ source: fill(String(m.source)), target: fill(String(m.target)), readonly: m.readonly === true }))
  // docker: the image's PATH (debian images set this one); raw_exec/exec: the client's.
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  return { driver, task, taskDir, argv, env, files, ports, mounts }
}

/** The runner flag's value(s) in argv (`--flag VALUE` or `--flag=VALUE`). */
export function flagValues(argv: string[], flag: string): string[] {
  const out: string[] = []
  argv.forEach((w, i) => {
    if (w === `--${flag}` && argv[i + 1] !== undefined) out.push(argv[i + 1] as string)
    else if (w.startsWith(`--${flag}=`)) out.push(w.slice(flag.length + 3))
  })
  return out
}

/** A POSIX shell word that stands for exactly `s`. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}
