/**
 * Boots one lab VM: QEMU with software emulation (TCG), the lab image's
 * kernel, its base initramfs plus this boot's overlay (/init, the guest
 * scripts, writ's jobs/scripts and any extra files), and each LUN attached
 * twice — two virtio-scsi controllers, one disk image, one WWN — so the guest
 * sees two paths to one LUN. The scenario named on the kernel command line
 * runs as soon as the disks are there; it reports JSON lines on the second
 * serial port (a unix socket here) and powers off, which ends QEMU.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { appendFileSync, chmodSync, copyFileSync, createReadStream, createWriteStream, cpSync, existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { writeCpio, type LabImage } from './lab-image.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const GUEST = join(HERE, 'guest')
const JOBS_SCRIPTS = join(HERE, '..', '..', 'jobs', 'scripts')
export const QEMU = 'qemu-system-x86_64'

/** One LUN: a sparse image file seen by the guest through two paths with this WWN. */
export interface LabLun {
  /** 16 hex digits (NAA 5 format), e.g. 5000c50015ea71ac. */
  wwn: string
  sizeMiB: number
}

/** A file put into the guest's filesystem for this boot. */
export interface LabFile {
  guestPath: string
  /** A host file to copy (hard-linked when possible), a host folder to copy whole, or the content itself. */
  from?: string
  fromDir?: string
  content?: string
  mode?: number
}

export interface LabBootOptions {
  image: LabImage
  scenario: string
  luns: LabLun[]
  /** Where this boot's disk images, overlay and console log go. */
  workDir: string
  files?: LabFile[]
  /** Extra `lab.KEY=VALUE` arguments for the scenario. */
  args?: Record<string, string>
  /**
   * QEMU user-mode network: the guest (10.0.2.15) reaches this machine's
   * loopback at 10.0.2.2; each forward makes a guest port reachable on
   * 127.0.0.1:<host> here.
   */
  net?: { hostForwards?: Array<{ host: number, guest: number }> }
  memoryMiB?: number
  /** The VM is killed (and the boot fails) after this long. */
  timeoutMs: number
}

/** One line the scenario reported: every value is a string, as printed. */
export interface LabResult { event: string, t: string, [key: string]: string }

export interface LabExit { code: number | null, signal: NodeJS.Signals | null, timedOut: boolean, ms: number }

/** Why QEMU cannot run here, or undefined when it can. */
export function qemuUnavailableReason(): string | undefined {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' })
  if (r.error) return `${QEMU} is not installed (apt-get install --no-install-recommends qemu-system-x86): ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`
  if (r.status !== 0) return `${QEMU} --version exited ${r.status}: ${r.stderr.trim()}`
  return undefined
}

export class LabVm {
  readonly results: LabResult[] = []
  readonly exited: Promise<LabExit>
  private readonly waiters = new Set<() => void>()
  private exit: LabExit | undefined

  constructor(private readonly child: ChildProcess, private readonly channel: Socket, readonly consoleLog: string, timeoutMs: number, readonly lunImages: string[]) {
    const started = Date.now()
    // Beside console.log, so a kept boot folder (WRIT_LAB_KEEP=1) says how far the scenario got.
    const resultsLog = join(dirname(consoleLog), 'results.jsonl')
    let buf = ''
    channel.on('data', (d: Buffer) => {
      buf += d.toString('utf8')
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '')
        buf = buf.slice(nl + 1)
        if (line.trim() === '') continue
        appendFileSync(resultsLog, `${line}\n`)
        try { this.results.push(JSON.parse(line) as LabResult) } catch { this.results.push({ event: 'unparsed', t: '', line }) }
      }
      this.wake()
    })
    channel.on('error', () => {})
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        this.exit = { code, signal, timedOut, ms: Date.now() - started }
        this.wake()
        resolve(this.exit)
      })
    })
  }

  /** The console (kernel log and /init's own output) so far. */
  console(): string {
    return existsSync(this.consoleLog) ? readFileSync(this.consoleLog, 'utf8') : ''
  }

  /** Results of one event, in order. */
  events(event: string): LabResult[] {
    return this.results.filter((r) => r.event === event)
  }

  /** Resolves with the first result matching `pred`; rejects if the VM ends first or at the deadline. */
  async waitFor(what: string, pred: (r: LabResult) => boolean, timeoutMs: number): Promise<LabResult> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const hit = this.results.find(pred)
      if (hit) return hit
      if (this.exit) throw new Error(`the VM ended (${JSON.stringify(this.exit)}) before ${what}; last results: ${this.lastResults()}\n${this.consoleTail()}`)
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; last results: ${this.lastResults()}\n${this.consoleTail()}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(1000, Math.max(1, deadline - Date.now())))
        function done(): void { clearTimeout(t); resolve() }
        this.waiters.add(done)
      })
    }
  }

  /** Lets a scenario blocked in `lab_wait NAME` go on. */
  release(name: string): void {
    this.channel.write(`continue ${name}\n`)
  }

  /** Waits for the scenario to ask for `name`, then lets it go on. */
  async waitAndRelease(name: string, timeoutMs: number): Promise<void> {
    await this.waitFor(`the guest to wait for "${name}"`, (r) => r.event === 'wait' && r.for === name, timeoutMs)
    this.release(name)
  }

  /** Waits for QEMU to exit; throws when the scenario did not end with `end rc=0`. */
  async finished(): Promise<{ exit: LabExit, end: LabResult }> {
    const exit = await this.exited
    const end = this.results.find((r) => r.event === 'end')
    if (exit.timedOut) throw new Error(`the VM did not power off within its timeout (${exit.ms} ms): killed; last results: ${this.lastResults()}\n${this.consoleTail()}`)
    if (!end) throw new Error(`QEMU exited (${exit.code ?? exit.signal}) without the scenario's end line; last results: ${this.lastResults()}\n${this.consoleTail()}`)
    return { exit, end }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }

  /** The scenario's last result lines, for an error that must say how far it got. */
  lastResults(n = 8): string {
    return this.results.slice(-n).map((r) => JSON.stringify(r)).join('\n')
  }

  consoleTail(lines = 40): string {
    return `--- console (last ${lines} lines) ---\n${this.console().split('\n').slice(-lines).join('\n')}`
  }

  private wake(): void {
    for (const w of [...this.waiters]) { this.waiters.delete(w); w() }
  }
}

function stageFile(root: string, f: LabFile): void {
  const dst = join(root, f.guestPath.replace(/^\/+/, ''))
  mkdirSync(dirname(dst), { recursive: true })
  if (f.fromDir !== undefined) {
    cpSync(f.fromDir, dst, { recursive: true })
  } else if (f.from !== undefined) {
    try { linkSync(f.from, dst) } catch { copyFileSync(f.from, dst) }
  } else {
    writeFileSync(dst, f.content ?? '')
  }
  if (f.mode !== undefined) chmodSync(dst, f.mode)
}

/** The boot's initramfs: the cached base followed by this boot's overlay (later cpio entries win). */
async function buildInitramfs(opts: LabBootOptions): Promise<string> {
  const overlay = join(opts.workDir, 'overlay')
  mkdirSync(overlay, { recursive: true })
  stageFile(overlay, { guestPath: '/init', from: join(GUEST, 'init'), mode: 0o755 })
  cpSync(GUEST, join(overlay, 'lab'), { recursive: true, filter: (src) => !src.endsWith('/init') })
  cpSync(join(GUEST, 'multipath.conf'), join(overlay, 'etc', 'multipath.conf'))
  // writ's scripts, where the democratic-csi job mounts them (guard under the mkfs names on PATH first).
  cpSync(JOBS_SCRIPTS, join(overlay, 'opt', 'writ', 'scripts'), { recursive: true })
  for (const f of opts.files ?? []) stageFile(overlay, f)
  const overlayCpio = join(opts.workDir, 'overlay.cpio')
  await writeCpio(opts.image.busybox, overlay, overlayCpio)
  const initrd = join(opts.workDir, 'initrd.cpio')
  const out = createWriteStream(initrd)
  for (const part of [opts.image.initramfs, overlayCpio]) {
    const input = createReadStream(part)
    input.pipe(out, { end: false })
    await once(input, 'end')
  }
  out.end()
  await once(out, 'finish')
  return initrd
}

/** Boots the scenario; the returned VM is running (or already done). */
export async function bootLab(opts: LabBootOptions): Promise<LabVm> {
  mkdirSync(opts.workDir, { recursive: true })
  const initrd = await buildInitramfs(opts)
  const consoleLog = join(opts.workDir, 'console.log')
  const socket = join(opts.workDir, 'lab.sock')
  const args = [
    '-accel', 'tcg', '-cpu', 'max', '-smp', '2', '-m', String(opts.memoryMiB ?? 2048),
    '-nographic', '-no-reboot', '-nodefaults',
    '-kernel', opts.image.kernel, '-initrd', initrd,
    '-append', ['console=ttyS0', 'panic=-1', 'quiet', `lab.scenario=${opts.scenario}`, `lab.paths=${opts.luns.length * 2}`, `lab.net=${opts.net ? 1 : 0}`,
      ...Object.entries(opts.args ?? {}).map(([k, v]) => `lab.${k}=${v}`)].join(' '),
    '-chardev', `file,id=console,path=${consoleLog}`, '-serial', 'chardev:console',
    // wait=on: the VM starts only once this process holds the channel, so no line is lost.
    '-chardev', `socket,id=lab,path=${socket},server=on,wait=on`, '-serial', 'chardev:lab',
    '-device', 'virtio-scsi-pci,id=scsi0', '-device', 'virtio-scsi-pci,id=scsi1',
  ]
  const lunImages: string[] = []
  opts.luns.forEach((lun, i) => {
    const img = join(opts.workDir, `lun${i}.img`)
    if (!existsSync(img)) spawnSync('truncate', ['-s', `${lun.sizeMiB}M`, img])
    lunImages.push(img)
    for (const bus of [0, 1]) {
      args.push('-drive', `file=${img},if=none,id=lun${i}p${bus},format=raw,cache=writethrough,file.locking=off`,
        '-device', `scsi-hd,drive=lun${i}p${bus},bus=scsi${bus}.0,scsi-id=${i},lun=0,serial=LAB${i}${opts.scenario.slice(0, 8).toUpperCase()},wwn=0x${lun.wwn},share-rw=on`)
    }
  })
  if (opts.net) {
    const fwd = (opts.net.hostForwards ?? []).map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join('')
    args.push('-netdev', `user,id=net0${fwd}`, '-device', 'virtio-net-pci,netdev=net0')
  }
  const child = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const channel = await new Promise<Socket>((resolve, reject) => {
    const deadline = Date.now() + 30_000
    const attempt = (): void => {
      if (child.exitCode !== null) { reject(new Error(`${QEMU} exited (${child.exitCode}) before the VM started: ${stderr.trim()}`)); return }
      const s = connect(socket)
      s.once('connect', () => resolve(s))
      s.once('error', () => {
        s.destroy()
        if (Date.now() > deadline) reject(new Error(`${QEMU} did not open its lab channel ${socket} within 30 s: ${stderr.trim()}`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })
  return new LabVm(child, channel, consoleLog, opts.timeoutMs, lunImages)
}
