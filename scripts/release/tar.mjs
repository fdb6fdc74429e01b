/**
 * A deterministic ustar writer for the packs artifact: sorted entries, fixed
 * mtime/uid/gid/owner names, modes normalised to 0755 (dirs, executables) or
 * 0644, gzip without a timestamp. The same input tree gives the same bytes.
 */
import { gzipSync } from 'node:zlib'

const BLOCK = 512
const RECORD = 20 * BLOCK

function octal(value, width) {
  // width includes the trailing NUL
  const s = value.toString(8)
  if (s.length > width - 1) throw new Error(`tar: value ${value} does not fit in ${width - 1} octal digits`)
  return s.padStart(width - 1, '0') + '\0'
}

function splitName(path) {
  const bytes = Buffer.byteLength(path)
  if (bytes <= 100) return { name: path, prefix: '' }
  // ustar: name (100) + '/' + prefix (155), split at a '/'
  for (let i = path.lastIndexOf('/', path.length - 2); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i)
    const name = path.slice(i + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix }
  }
  throw new Error(`tar: path too long for ustar: ${path}`)
}

function header({ path, type, mode, size }) {
  const h = Buffer.alloc(BLOCK, 0)
  const { name, prefix } = splitName(path)
  h.write(name, 0, 100, 'utf8')
  h.write(octal(mode, 8), 100, 'ascii')
  h.write(octal(0, 8), 108, 'ascii') // uid
  h.write(octal(0, 8), 116, 'ascii') // gid
  h.write(octal(size, 12), 124, 'ascii')
  h.write(octal(0, 12), 136, 'ascii') // mtime: the epoch
  h.write('        ', 148, 'ascii') // checksum placeholder
  h.write(type, 156, 'ascii')
  h.write('ustar\0', 257, 'ascii')
  h.write('00', 263, 'ascii')
  h.write('root', 265, 'ascii') // uname
  h.write('root', 297, 'ascii') // gname
  h.write(octal(0, 8), 329, 'ascii')
  h.write(octal(0, 8), 337, 'ascii')
  h.write(prefix, 345, 155, 'utf8')
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii')
  return h
}

/**
 * @param {Array<{ path: string, type: 'dir' | 'file', executable?: boolean, data?: Buffer }>} entries
 *   paths are POSIX, relative, without a leading "./"; dirs without a trailing "/".
 * @returns {Buffer} the gzip-compressed tar
 */
export function deterministicTarGz(entries) {
  const sorted = [...entries].map((e) => ({ ...e, key: e.type === 'dir' ? `${e.path}/` : e.path }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  const seen = new Set()
  const chunks = []
  for (const e of sorted) {
    if (seen.has(e.key)) throw new Error(`tar: duplicate entry ${e.key}`)
    seen.add(e.key)
    if (e.key.startsWith('/') || e.key.split('/').includes('..')) throw new Error(`tar: unsafe path ${e.key}`)
    if (e.type === 'dir') {
      chunks.push(header({ path: e.key, type: '5', mode: 0o755, size: 0 }))
    } else {
      const data = e.data ?? Buffer.alloc(0)
      chunks.push(header({ path: e.key, type: '0', mode: e.executable ? 0o755 : 0o644, size: data.length }))
      chunks.push(data)
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK
      if (pad) chunks.push(Buffer.alloc(pad, 0))
    }
  }
  chunks.push(Buffer.alloc(2 * BLOCK, 0))
  let tar = Buffer.concat(chunks)
  const rem = tar.length % RECORD
  if (rem) tar = Buffer.concat([tar, Buffer.alloc(RECORD - rem, 0)])
  // Node's gzip writes mtime 0 and no file name; level pinned.
  return gzipSync(tar, { level: 9 })
}
