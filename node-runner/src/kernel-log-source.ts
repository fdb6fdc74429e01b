/**
 * Where `dmesg` reads the kernel log. By default the kernel's own buffer
 * (/dev/kmsg). A runner can be given a file instead (`kernelLogFile`): a
 * host's kernel log handed to a runner that may not open /dev/kmsg, or a
 * test node's log. The file holds kernel records as `dmesg --raw` prints
 * them: `<priority>[seconds] message`, one a line.
 *
 * dmesg reads such a file with `--file`, but util-linux refuses `--raw`
 * together with `--level`/`--facility` (`--kernel`) unless it reads
 * /dev/kmsg; so for a file `--raw` becomes `--decode`, which prints the same
 * priority as `kern  :err   : ` (the dmesg parser reads both forms). Every
 * other argument, filters included, stays as the pack declared it.
 */
import { basename } from 'node:path'
import type { Invocation } from '@writ/packs'

type ExecInvocation = Extract<Invocation, { kind: 'exec' }>

export function withKernelLogSource<I extends Invocation>(inv: I, file: string | undefined): I {
  if (file === undefined || inv.kind !== 'exec' || basename((inv as ExecInvocation).binary) !== 'dmesg') return inv
  const exec = inv as ExecInvocation
  const argv = exec.argv.map((a) => (a === '--raw' || a === '-r' ? '--decode' : a))
  return { ...exec, argv: [`--file=${file}`, ...argv] } as I
}
