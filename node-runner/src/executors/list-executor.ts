/**
 * A directory listing confined to a declared root: the target is resolved with
 * realpath and must stay inside the root's realpath; symlinks are reported,
 * never followed, so no entry can lead the listing out of the root.
 */
import { lstat, readdir, readlink, realpath } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { createHash } from 'node:crypto'
import type { Invocation } from '@writ/packs'
import type { ExecutionContext, ExecutionOutcome } from './execution-outcome.js'

export interface ListEntry {
  path: string
  type: 'file' | 'dir' | 'symlink' | 'block' | 'char' | 'fifo' | 'socket' | 'other'
  size: number
  mode: string
  mtime: string
  /** Symlink target as stored (never resolved). */
  target?: string
}

function typeOf(st: Awaited<ReturnType<typeof lstat>>): ListEntry['type'] {
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isDirectory()) return 'dir'
  if (st.isFile()) return 'file'
  if (st.isBlockDevice()) return 'block'
  if (st.isCharacterDevice()) return 'char'
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  return 'other'
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep)
}

export async function executeList(inv: Extract<Invocation, { kind: 'list' }>, ctx: ExecutionContext): Promise<ExecutionOutcome> {
  const started = Date.now()
  const fail = (error: string): ExecutionOutcome => ({
    status: 'failed', exitCode: null, signal: null, stdout: '', stderr: error, stdoutTruncated: false, stderrTruncated: false,
    stdoutBytes: 0, stderrBytes: Buffer.byteLength(error), stdoutSha256: createHash('sha256').digest('hex'), error,
  })
  let root: string
  try { root = await realpath(inv.root) } catch (e) { return fail(`root ${inv.root} is not available: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`) }
  let target = root
  // The root itself needs no second resolution.
  if (inv.relPath !== '.') try { target = await realpath(join(root, inv.relPath)) } catch (e) {
    return fail(`${inv.relPath} under ${inv.root}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`)
  }
  if (!inside(root, target)) return fail(`${inv.relPath} resolves outside ${inv.root}; refused`)

  const entries: ListEntry[] = []
  let truncated = false
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (ctx.signal.aborted || Date.now() - started > ctx.limits.timeoutMs) return
    const names = (await readdir(dir)).sort()
    for (const name of names) {
      if (entries.length >= inv.maxEntries) { truncated = true; return }
      const full = join(dir, name)
      const st = await lstat(full)
      const type = typeOf(st)
      const entry: ListEntry = { path: relative(root, full), type, size: st.size, mode: (st.mode & 0o7777).toString(8), mtime: st.mtime.toISOString() }
      if (type === 'symlink') entry.target = await readlink(full)
      entries.push(entry)
      if (type === 'dir' && depth < inv.maxDepth) await walk(full, depth + 1)
    }
  }
  try {
    const st = await lstat(target)
    if (st.isDirectory()) await walk(target, 0)
    else entries.push({ path: relative(root, target), type: typeOf(st), size: st.size, mode: (st.mode & 0o7777).toString(8), mtime: st.mtime.toISOString() })
  } catch (e) { return fail(`listing ${inv.relPath}: ${(e as Error).message}`) }

  const timedOut = Date.now() - started > ctx.limits.timeoutMs
  const body = JSON.stringify({ root: inv.root, path: inv.relPath, entries, truncated }, null, 1)
  const bytes = Buffer.from(body)
  const kept = bytes.length > ctx.limits.maxStdoutBytes ? bytes.subarray(0, ctx.limits.maxStdoutBytes).toString('utf8') : body
  ctx.onChunk('stdout', kept)
  return {
    status: ctx.signal.aborted ? 'canceled' : timedOut ? 'timed_out' : 'succeeded',
    exitCode: 0, signal: null, stdout: kept, stderr: '',
    stdoutTruncated: bytes.length > ctx.limits.maxStdoutBytes, stderrTruncated: false,
    stdoutBytes: bytes.length, stderrBytes: 0, stdoutSha256: createHash('sha256').update(bytes).digest('hex'),
  }
}
