/**
 * Real loop devices for the mkfs guard tests: a sparse backing file attached
 * with `losetup`, detached (and the file removed) in teardown.
 */
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface LoopDevice {
  path: string
  backingFile: string
  detach(): void
}

/** Why these tests cannot run here, or undefined when they can. */
export function loopDeviceSkipReason(tools: string[] = ['losetup', 'blkid', 'wipefs', 'blockdev', 'dd', 'cmp']): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: loop devices need root (run the suite as root to exercise the guard on real block devices)'
  for (const tool of tools) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }) } catch { return `${tool} not found on PATH` }
  }
  try {
    const dir = mkdtempSync(join(tmpdir(), 'writ-loop-probe-'))
    const f = join(dir, 'probe.img')
    writeFileSync(f, Buffer.alloc(0))
    execFileSync('truncate', ['-s', '1M', f])
    const dev = execFileSync('losetup', ['--find', '--show', f], { encoding: 'utf8' }).trim()
    execFileSync('losetup', ['-d', dev])
    rmSync(dir, { recursive: true, force: true })
  } catch (e) {
    return `cannot attach a loop device here: ${(e as Error).message.split('\n')[0]}`
  }
  return undefined
}

export function hasTool(tool: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); return true } catch { return false }
}

/** Attaches a new all-zero sparse file of `sizeMiB` as a loop device. */
export function createLoopDevice(dir: string, name: string, sizeMiB = 64): LoopDevice {
  const backingFile = join(dir, `${name}.img`)
  writeFileSync(backingFile, Buffer.alloc(0))
  execFileSync('truncate', ['-s', `${sizeMiB}M`, backingFile])
  const path = execFileSync('losetup', ['--find', '--show', backingFile], { encoding: 'utf8' }).trim()
  let attached = true
  return {
    path,
    backingFile,
    detach() {
      if (!attached) return
      attached = false
      try { execFileSync('losetup', ['-d', path], { stdio: 'ignore' }) } catch { /* already gone */ }
    },
  }
}

/** SHA-256 of a whole block device (or file), read through the page cache. */
export async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256')
  await new Promise<void>((resolve, reject) => {
    createReadStream(path).on('data', (d) => hash.update(d)).on('end', () => resolve()).on('error', reject)
  })
  return hash.digest('hex')
}

/** Filesystem type blkid finds on a device, or '' for none. */
export function fsTypeOf(path: string): string {
  try {
    return execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', path], { encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
}

export interface ScriptResult {
  code: number | null
  stdout: string
  stderr: string
  /** Wall time until the script's stdio closed: what a caller waiting on it sees. */
  ms: number
}

/** Runs a script the way democratic-csi does: spawn, wait for stdio to close. */
export function runScript(file: string, args: string[], env: NodeJS.ProcessEnv, argv0?: string): Promise<ScriptResult> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(argv0 ?? file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }))
  })
}
