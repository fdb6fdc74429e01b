/**
 * What every lab test file starts with: QEMU must be able to run and the lab
 * image must build, or the test FAILS saying why (the lab is opt-in through
 * `npm run test:lab`; whoever runs it, CI included, wants it run, not
 * skipped). Each boot gets its own folder, kept when WRIT_LAB_KEEP=1.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { labImage, type LabImage } from './lab-image.js'
import { bootLab, qemuUnavailableReason, type LabBootOptions, type LabResult, type LabVm } from './lab-vm.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

interface TapLike {
  fail(message: string): void
  comment(...args: unknown[]): void
  teardown(fn: () => unknown): void
}

export interface ReleaseArtifacts { version: string, runner: string, packsTarball: string }

export interface LabSuite {
  image: LabImage
  /** Boots a scenario in a fresh folder; the VM is killed at teardown if still running. */
  boot(name: string, opts: Omit<LabBootOptions, 'image' | 'workDir'>): Promise<LabVm>
  /** Builds the runner's release executable and the packs tarball (scripts/release/build.mjs). */
  release(): ReleaseArtifacts
}

/** Sets up the lab for one test file, or fails the test with the reason and returns undefined. */
export async function labSuite(t: TapLike): Promise<LabSuite | undefined> {
  const qemu = qemuUnavailableReason()
  if (qemu) {
    t.fail(`the lab cannot run: ${qemu}`)
    return undefined
  }
  let image: LabImage
  try {
    image = await labImage((line) => t.comment(line))
  } catch (e) {
    t.fail(`the lab image cannot be built: ${(e as Error).message}`)
    return undefined
  }
  t.comment(`lab image: ${image.kernelRelease} (${image.packages.find((p) => p.name.startsWith('linux-image-'))?.version ?? '?'}), ${image.packages.length} Debian packages, ${image.built ? `built in ${(image.buildMs / 1000).toFixed(1)} s` : 'from the cache'}`)
  const base = mkdtempSync(join(tmpdir(), 'writ-lab-'))
  const vms: LabVm[] = []
  t.teardown(() => {
    for (const vm of vms) vm.kill()
    if (process.env.WRIT_LAB_KEEP === '1') t.comment(`lab folders kept in ${base}`)
    else rmSync(base, { recursive: true, force: true })
  })
  let release: ReleaseArtifacts | undefined
  return {
    image,
    async boot(name, opts) {
      const workDir = join(base, name)
      mkdirSync(workDir, { recursive: true })
      const vm = await bootLab({ ...opts, image, workDir })
      vms.push(vm)
      return vm
    },
    release() {
      if (release) return release
      const out = join(base, 'release')
      const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'release', 'build.mjs'), '--out', out, '--only', 'runner,packs'], { encoding: 'utf8', timeout: 300_000 })
      if (r.status !== 0) throw new Error(`the release build failed (exit ${r.status}); the lab runs the runner's release executable:\n${r.stdout}${r.stderr}`)
      const version = (JSON.parse(readFileSync(join(ROOT, 'node-runner', 'package.json'), 'utf8')) as { version: string }).version
      const dir = join(out, `v${version}`)
      release = { version, runner: join(dir, `writ-node-runner-${process.platform}-${process.arch}`), packsTarball: join(dir, `writ-packs-${version}.tar.gz`) }
      return release
    },
  }
}

/** The scenario's result lines, one a line, as the closing note quotes them (long values cut). */
export function resultLines(vm: LabVm, skip: string[] = []): string {
  return vm.results.filter((r) => !skip.includes(r.event)).map((r) => formatResult(r)).join('\n')
}

export function formatResult(r: LabResult, max = 240): string {
  const { event, t: at, ...rest } = r
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${JSON.stringify(v.length > max ? `${v.slice(0, max)}…` : v)}`)
  return `[${at}] ${event} ${fields.join(' ')}`
}

/** The one result of `event`, or a clear error naming what the scenario did report. */
export function one(vm: LabVm, event: string): LabResult {
  const hits = vm.events(event)
  if (hits.length !== 1) throw new Error(`expected one "${event}" result, got ${hits.length}; results: ${vm.results.map((r) => r.event).join(', ')}`)
  return hits[0] as LabResult
}

/** Parses `groups=E,E paths=8:0:F,8:16:F queue=1` (guest/lab-lib.sh lab_map_state). */
export function mapState(text: string | undefined): { groups: string[], paths: Array<{ dev: string, state: string }>, queueing: boolean } {
  const m = /^groups=(\S*) paths=(\S*) queue=([01])$/.exec((text ?? '').trim())
  if (!m) throw new Error(`not a map state line: "${text}"`)
  return {
    groups: (m[1] as string).split(',').filter(Boolean),
    paths: (m[2] as string).split(',').filter(Boolean).map((p) => { const i = p.lastIndexOf(':'); return { dev: p.slice(0, i), state: p.slice(i + 1) } }),
    queueing: m[3] === '1',
  }
}

/** Runs a host tool on a LUN image after the VM is gone (the data itself, not the guest's word for it). */
export function onHost(cmd: string, args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.error) throw new Error(`${cmd} is not available on this machine: ${r.error.message}`)
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

export function sha256OnHost(file: string): string {
  return execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0] as string
}
