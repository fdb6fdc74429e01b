/**
 * The deployment files the structural tests walk: every job and Terraform
 * file (parsed once with HashiCorp's HCL parser through hcl-jobs.ts), the
 * five jobs the design names, and where the module refers to variables.
 */
import { relative } from 'node:path'
import { JOBS_DIR, TF_DIR, walk, type Json } from './hcl-jobs.js'
import { REPO_ROOT } from '../doubles/fixtures-dir.js'

export { hcl, onlyJob, groups, tasks } from './hcl-jobs.js'
export type { Json } from './hcl-jobs.js'

export const root = REPO_ROOT
export const jobsDir = JOBS_DIR
export const tfDir = TF_DIR

export const allFiles = [...walk(jobsDir), ...walk(tfDir)]
export const hclFiles = allFiles.filter((f) => f.endsWith('.hcl') || f.endsWith('.tf'))
export const jobFiles = allFiles.filter((f) => f.endsWith('.nomad.hcl'))
export const rel = (f: string): string => relative(root, f)

/** var.NAME references anywhere in the parsed document. */
export function varRefs(doc: Json): Set<string> {
  const refs = new Set<string>()
  const text = JSON.stringify({ ...doc, variable: undefined })
  for (const m of text.matchAll(/\bvar\.([A-Za-z_][A-Za-z0-9_-]*)/g)) refs.add(m[1] as string)
  return refs
}

export const EXPECTED_JOBS: Record<string, { job: string, type: string }> = {
  'nats.nomad.hcl': { job: 'writ-nats', type: 'service' },
  'writ-control-plane.nomad.hcl': { job: 'writ-control-plane', type: 'service' },
  'writ-node-runner.nomad.hcl': { job: 'writ-node-runner', type: 'system' },
  'democratic-csi-node.nomad.hcl': { job: 'democratic-csi-node', type: 'system' },
  'multipath-watchdog.nomad.hcl': { job: 'multipath-watchdog', type: 'system' },
}
