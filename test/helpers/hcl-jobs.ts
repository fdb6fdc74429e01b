/**
 * The job files and the Terraform module as HashiCorp's own HCL parser reads
 * them (@cdktf/hcl2json), with the small walks the deployment tests share:
 * the one job in a file, its groups and tasks, and `${var.x}` resolved to the
 * variable's default the way `nomad job run` without -var would.
 */
import { parse as parseHcl } from '@cdktf/hcl2json'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../doubles/fixtures-dir.js'

export const JOBS_DIR = join(REPO_ROOT, 'jobs')
export const TF_DIR = join(REPO_ROOT, 'terraform')

// hcl2json output is untyped JSON by nature.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any

const parsed = new Map<string, Promise<Json>>()

/** Parses (once) an .hcl or .tf file. */
export function hcl(file: string): Promise<Json> {
  let v = parsed.get(file)
  if (!v) {
    v = parseHcl(file, readFileSync(file, 'utf8'))
    parsed.set(file, v)
  }
  return v
}

export function walk(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    if (name === '.terraform') continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...walk(p))
    else out.push(p)
  }
  return out.sort()
}

export const jobFiles = (): string[] => walk(JOBS_DIR).filter((f) => f.endsWith('.nomad.hcl'))

export function onlyJob(doc: Json): { name: string, job: Json } {
  const names = Object.keys(doc.job ?? {})
  if (names.length !== 1) throw new Error(`expected exactly one job, found ${names.length}`)
  const name = names[0] as string
  return { name, job: doc.job[name][0] }
}

export function groups(job: Json): Array<{ name: string, group: Json }> {
  return Object.entries(job.group ?? {}).map(([name, g]) => ({ name, group: (g as Json[])[0] }))
}

export function tasks(group: Json): Array<{ name: string, task: Json }> {
  return Object.entries(group.task ?? {}).map(([name, x]) => ({ name, task: (x as Json[])[0] }))
}

/** Every task of a job file, with its file's parsed document. */
export async function allTasks(): Promise<Array<{ file: string, doc: Json, job: string, group: Json, name: string, task: Json }>> {
  const out = []
  for (const file of jobFiles()) {
    const doc = await hcl(file)
    const { name: job, job: body } = onlyJob(doc)
    for (const { group } of groups(body)) for (const { name, task } of tasks(group)) out.push({ file, doc, job, group, name, task })
  }
  return out
}

/**
 * A value as Nomad would see it with every variable at its default: a whole
 * `${var.x}` becomes the default (any type); `${var.x}` inside a longer string
 * is replaced by its text. Other interpolations (`${NOMAD_…}`, `${node.…}`)
 * stay as written.
 */
export function withDefaults(doc: Json, value: unknown): unknown {
  if (typeof value !== 'string') return value
  const whole = /^\$\{var\.([A-Za-z0-9_-]+)\}$/.exec(value)
  const defaultOf = (name: string): unknown => {
    const v = doc.variable?.[name]?.[0]
    if (!v || !('default' in v)) throw new Error(`var.${name} has no default`)
    return v.default
  }
  if (whole) return defaultOf(whole[1] as string)
  return value.replace(/\$\{var\.([A-Za-z0-9_-]+)\}/g, (_, n: string) => String(defaultOf(n)))
}
