/**
 * Loads pack folders into typed packs with a content digest. Every problem is
 * reported with the file and the field it concerns; one bad action never hides
 * the rest of its pack.
 */
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs'
import { join, posix, relative, resolve } from 'node:path'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import type { ZodError } from 'zod'
import { canonicalJson } from './canonical-json.js'
import { ActionFileSchema, PackManifestSchema, RUNNER_DIR_RE, RUNNER_DIRS, TEMPLATE_FILTERS, type ActionFile, type PackManifest } from './pack-schema.js'
import { prepareInvocation, templateNames } from './invocation.js'
import { shellReasons } from './shell-detection.js'
import { summaryProblems } from './action-summary.js'

export interface LoadedAction {
  /** `<pack>.<action>` */
  id: string
  pack: string
  /** Absolute path of the action's YAML file. */
  file: string
  spec: ActionFile
  /** The action runs a shell, an interpreter or a pack script: arguments may reach code. */
  usesShell: boolean
  /** Why it is a shell action (empty when it is not), for `packs check` and runner refusals. */
  shellReasons: string[]
}

export interface LoadedPack {
  id: string
  name: string
  version: string
  dir: string
  manifest: PackManifest
  /** SHA-256 (hex) of the pack's canonical content: manifest, every listed action, every script. */
  digest: string
  actions: Map<string, LoadedAction>
}

export interface LoadError {
  file: string
  /** Dotted path of the offending field, or `""` for the whole file. */
  field: string
  message: string
  pack?: string
  action?: string
}

export interface LoadResult {
  packs: LoadedPack[]
  errors: LoadError[]
  counts: { packsLoaded: number, packsFailed: number, actionsLoaded: number, actionsFailed: number }
}

/** Loads every pack under `dirs`: a dir is either a pack (has pack.yaml) or holds pack folders. */
export function loadPacks(dirs: readonly string[]): LoadResult {
  const result: LoadResult = { packs: [], errors: [], counts: { packsLoaded: 0, packsFailed: 0, actionsLoaded: 0, actionsFailed: 0 } }
  const seen = new Map<string, string>()
  const actionOwners = new Map<string, string>()
  for (const dir of dirs) {
    const abs = resolve(dir)
    if (!existsSync(abs) || !statSync(abs).isDirectory()) {
      result.errors.push({ file: abs, field: '', message: 'not a directory' })
      result.counts.packsFailed++
      continue
    }
    const packDirs = existsSync(join(abs, 'pack.yaml')) || existsSync(join(abs, 'pack.yml'))
      ? [abs]
      : readdirSync(abs, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => join(abs, d.name)).sort()
    for (const packDir of packDirs) {
      const manifestFile = existsSync(join(packDir, 'pack.yaml')) ? join(packDir, 'pack.yaml') : join(packDir, 'pack.yml')
      if (!existsSync(manifestFile)) continue
      const pack = loadPack(packDir, manifestFile, result)
      if (!pack) continue
      const prior = seen.get(pack.id)
      if (prior) {
        result.errors.push({ file: manifestFile, field: 'id', pack: pack.id, message: `pack id "${pack.id}" is already loaded from ${prior}` })
        result.counts.packsFailed++
        result.counts.actionsLoaded -= pack.actions.size
        continue
      }
      seen.set(pack.id, packDir)
      for (const id of [...pack.actions.keys()]) {
        const owner = actionOwners.get(id)
        if (owner) {
          const a = pack.actions.get(id) as LoadedAction
          result.errors.push({ file: a.file, field: 'id', pack: pack.id, action: id, message: `action id "${id}" is already declared by pack "${owner}"` })
          pack.actions.delete(id)
          result.counts.actionsLoaded--
          result.counts.actionsFailed++
        } else actionOwners.set(id, pack.id)
      }
      result.packs.push(pack)
      result.counts.packsLoaded++
    }
  }
  return result
}

function loadPack(dir: string, manifestFile: string, result: LoadResult): LoadedPack | undefined {
  const raw = readYaml(manifestFile, result)
  if (raw === undefined) { result.counts.packsFailed++; return undefined }
  const parsed = PackManifestSchema.safeParse(raw)
  if (!parsed.success) {
    pushZodErrors(result, manifestFile, parsed.error)
    result.counts.packsFailed++
    return undefined
  }
  const manifest = parsed.data
  const actions = new Map<string, LoadedAction>()
  const content: Record<string, unknown> = { 'pack.yaml': raw }
  const scripts: Record<string, string> = {}
  manifest.actions.forEach((rel, i) => {
    const file = resolve(dir, rel)
    if (relative(dir, file).startsWith('..')) {
      result.errors.push({ file: manifestFile, field: `actions.${i}`, pack: manifest.id, message: `action file "${rel}" is outside the pack folder` })
      result.counts.actionsFailed++
      return
    }
    const before = result.errors.length
    const action = loadAction(dir, file, manifest.id, result)
    content[posix.normalize(rel)] = action?.raw ?? null
    if (action?.scriptRel && action.scriptAbs && existsSync(action.scriptAbs)) {
      scripts[action.scriptRel] = createHash('sha256').update(readFileSync(action.scriptAbs)).digest('hex')
    }
    if (!action?.loaded || result.errors.length > before) { result.counts.actionsFailed++; return }
    if (actions.has(action.loaded.id)) {
      result.errors.push({ file, field: 'id', pack: manifest.id, action: action.loaded.id, message: `action id "${action.loaded.id}" is declared twice in pack "${manifest.id}"` })
      result.counts.actionsFailed++
      return
    }
    actions.set(action.loaded.id, action.loaded)
    result.counts.actionsLoaded++
  })
  const digest = createHash('sha256').update(canonicalJson({ content, scripts })).digest('hex')
  return { id: manifest.id, name: manifest.name, version: manifest.version, dir, manifest, digest, actions }
}

interface ActionLoad { raw: unknown, loaded?: LoadedAction, scriptRel?: string, scriptAbs?: string }

function loadAction(packDir: string, file: string, packId: string, result: LoadResult): ActionLoad | undefined {
  if (!existsSync(file)) {
    result.errors.push({ file, field: '', pack: packId, message: 'action file listed in pack.yaml does not exist' })
    return undefined
  }
  const raw = readYaml(file, result, packId)
  if (raw === undefined) return undefined
  const parsed = ActionFileSchema.safeParse(raw)
  if (!parsed.success) {
    pushZodErrors(result, file, parsed.error, packId, idOf(raw))
    return { raw }
  }
  const spec = parsed.data
  const err = (field: string, message: string): void => { result.errors.push({ file, field, pack: packId, action: spec.id, message }) }

  const declared = new Set(spec.args.map((a) => a.name))
  const checkTemplates = (field: string, t: string): void => {
    for (const m of t.matchAll(/\{\{([^}]*)\}\}/g)) {
      const inner = m[1] ?? ''
      const ok = /^\s*args\.([a-z][a-z0-9_]*)\??\s*(?:\|\s*([a-z_]+)\s*)?$/.exec(inner)
      if (!ok) { err(field, `template "{{${inner}}}" is not of the form {{ args.<name> }}`); continue }
      if (!declared.has(ok[1] as string)) err(field, `template names undeclared argument "${ok[1]}"`)
      if (ok[2] && !(TEMPLATE_FILTERS as readonly string[]).includes(ok[2])) err(field, `unknown template filter "${ok[2]}" (known: ${TEMPLATE_FILTERS.join(', ')})`)
    }
  }
  let reasons: string[] = []
  let scriptRel: string | undefined
  let scriptAbs: string | undefined
  switch (spec.kind) {
    case 'exec':
      spec.execution.command.argv.forEach((t, i) => checkTemplates(`execution.command.argv.${i}`, t))
      reasons = shellReasons(spec.execution.command.binary, spec.execution.command.argv, spec.execution.env)
      checkTemplates('execution.command.binary', spec.execution.command.binary)
      if (/\{\{/.test(spec.execution.command.binary)) err('execution.command.binary', 'the binary is fixed by the pack and cannot be templated')
      for (const [k, t] of Object.entries(spec.execution.env ?? {})) checkTemplates(`execution.env.${k}`, t)
      break
    case 'script': {
      spec.execution.argv.forEach((t, i) => checkTemplates(`execution.argv.${i}`, t))
      for (const [k, t] of Object.entries(spec.execution.env ?? {})) checkTemplates(`execution.env.${k}`, t)
      reasons = [`runs the pack script "${spec.execution.script.path}" with ${spec.execution.script.interpreter}`]
      scriptRel = posix.normalize(spec.execution.script.path)
      scriptAbs = resolve(packDir, scriptRel)
      if (relative(packDir, scriptAbs).startsWith('..')) err('execution.script.path', `script "${spec.execution.script.path}" is outside the pack folder`)
      else if (!existsSync(scriptAbs)) err('execution.script.path', `script file "${spec.execution.script.path}" is missing from the pack (expected at ${scriptAbs})`)
      break
    }
    case 'http': {
      const h = spec.execution.http
      checkTemplates('execution.http.path', h.path)
      for (const name of templateNames(h.path)) {
        const a = spec.args.find((x) => x.name === name)
        if (a && !a.required && a.default === undefined) err('execution.http.path', `path argument "${name}" must be required or have a default`)
      }
      for (const [k, t] of Object.entries(h.query ?? {})) checkTemplates(`execution.http.query.${k}`, t)
      walkStrings(h.body, 'execution.http.body', checkTemplates)
      if (h.stream === 'docker-multiplexed' && h.target !== 'docker') err('execution.http.stream', 'docker-multiplexed streams only come from the docker target')
      break
    }
    case 'list': {
      checkTemplates('execution.list.path', spec.execution.list.path)
      const root = spec.execution.list.root
      const dir = RUNNER_DIR_RE.exec(root)
      if (dir && !(RUNNER_DIRS as readonly string[]).includes(dir[1] as string)) err('execution.list.root', `"${dir[1]}" is not a runner directory (known: ${RUNNER_DIRS.join(', ')})`)
      const rest = dir ? dir[2] as string : root
      if (rest !== '' && !rest.startsWith('/')) err('execution.list.root', `after {{ runner.${dir?.[1] ?? ''} }} comes "/…" or nothing, not "${rest}"`)
      if (rest.split('/').includes('..') || /\{\{|\}\}/.test(rest)) err('execution.list.root', `root "${root}" has a ".." segment or a second template: it must name one fixed directory`)
      break
    }
  }
  for (const [field, message] of summaryProblems(spec)) err(field, message)
  spec.examples.forEach((ex, i) => {
    const r = prepareInvocation(spec, ex.args, packDir)
    if (!r.ok) err(`examples.${i}.args`, `example "${ex.title}" does not satisfy the argument contract: ${r.errors.map((e) => e.message).join('; ')}`)
  })
  return { raw, loaded: { id: spec.id, pack: packId, file, spec, usesShell: reasons.length > 0, shellReasons: reasons }, ...(scriptRel ? { scriptRel, scriptAbs } : {}) }
}

function walkStrings(v: unknown, field: string, fn: (field: string, s: string) => void): void {
  if (typeof v === 'string') fn(field, v)
  else if (Array.isArray(v)) v.forEach((x, i) => walkStrings(x, `${field}.${i}`, fn))
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walkStrings(x, `${field}.${k}`, fn)
}

function readYaml(file: string, result: LoadResult, pack?: string): unknown {
  try {
    const doc = parseYaml(readFileSync(file, 'utf8'), { uniqueKeys: true, maxAliasCount: 100 }) as unknown
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      result.errors.push({ file, field: '', message: 'expected a YAML mapping at the top level', ...(pack ? { pack } : {}) })
      return undefined
    }
    return doc
  } catch (e) {
    const message = e instanceof YAMLParseError ? `YAML: ${e.message.split('\n')[0]}` : `cannot read: ${(e as Error).message}`
    result.errors.push({ file, field: '', message, ...(pack ? { pack } : {}) })
    return undefined
  }
}

function pushZodErrors(result: LoadResult, file: string, error: ZodError, pack?: string, action?: string): void {
  for (const issue of error.issues) {
    result.errors.push({
      file, field: issue.path.map(String).join('.'), message: issue.message,
      ...(pack ? { pack } : {}), ...(action ? { action } : {}),
    })
  }
}

function idOf(raw: unknown): string | undefined {
  const id = (raw as { id?: unknown }).id
  return typeof id === 'string' ? id : undefined
}
