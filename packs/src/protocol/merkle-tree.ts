/**
 * A Merkle tree over a plan's frozen targets, as RFC 9162 (Certificate
 * Transparency v2) §2.1 defines it: a leaf hashes as SHA-256(0x00 || data),
 * an inner node as SHA-256(0x01 || left || right), and a tree of n leaves
 * splits at the largest power of two below n. The prefixes keep a leaf from
 * ever passing for an inner node; the split makes every inclusion proof at
 * most ⌈log₂ n⌉ hashes (32 bytes each), and which side each proof hash sits
 * on follows from the leaf's index and the tree size alone, so a proof needs
 * no direction bits.
 */
import { createHash } from 'node:crypto'

const LEAF = Buffer.from([0])
const NODE = Buffer.from([1])

/** The hash of one leaf's data (its canonical bytes). */
export function merkleLeafHash(data: string | Uint8Array): Buffer {
  return createHash('sha256').update(LEAF).update(data).digest()
}

function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE).update(left).update(right).digest()
}

/** The largest power of two strictly below n (n ≥ 2). */
function split(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/**
 * The whole tree built once, so that every leaf's proof is read from it
 * instead of being hashed again (a plan of N targets costs 2N hashes, not
 * N·log N). Levels hold the RFC's subtree hashes for the power-of-two runs.
 */
export class MerkleTree {
  /** `levels[h][i]`: the hash of the complete subtree of height h over leaves i·2^h … (i+1)·2^h − 1. */
  private readonly levels: Buffer[][]
  /** The incomplete subtrees (a tree whose size is not a power of two has one per level), hashed once. */
  private readonly partial = new Map<number, Buffer>()
  readonly size: number
  readonly root: Buffer

  constructor(leafHashes: readonly Buffer[]) {
    if (leafHashes.length === 0) throw new RangeError('a Merkle tree needs at least one leaf')
    this.size = leafHashes.length
    this.levels = [[...leafHashes]]
    for (let level = this.levels[0] as Buffer[]; level.length > 1;) {
      const next: Buffer[] = []
      for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i] as Buffer, level[i + 1] as Buffer))
      this.levels.push(next)
      level = next
    }
    this.root = this.subtree(0, this.size)
  }

  /** MTH of leaves [start, start + n). */
  private subtree(start: number, n: number): Buffer {
    // A complete, aligned run of 2^h leaves is stored.
    if ((n & (n - 1)) === 0 && start % n === 0) {
      const h = Math.log2(n)
      const hit = this.levels[h]?.[start / n]
      if (hit) return hit
    }
    if (n === 1) return this.levels[0]?.[start] as Buffer
    // An incomplete subtree ends at the last leaf, so its start alone names it.
    const known = this.partial.get(start)
    if (known && start + n === this.size) return known
    const k = split(n)
    const h = nodeHash(this.subtree(start, k), this.subtree(start + k, n - k))
    if (start + n === this.size) this.partial.set(start, h)
    return h
  }

  /** The inclusion proof of leaf `index` (RFC 9162 PATH), deepest hash first. */
  proof(index: number): Buffer[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`leaf ${index} is not in a tree of ${this.size}`)
    const path: Buffer[] = []
    const walk = (m: number, start: number, n: number): void => {
      if (n === 1) return
      const k = split(n)
      if (m < k) { walk(m, start, k); path.push(this.subtree(start + k, n - k)) } else { walk(m - k, start + k, n - k); path.push(this.subtree(start, k)) }
    }
    walk(index, 0, this.size)
    return path
  }
}

/** The most hashes an inclusion proof in a tree of `size` leaves holds: ⌈log₂ size⌉. */
export function maxProofLength(size: number): number {
  return size <= 1 ? 0 : Math.ceil(Math.log2(size))
}

/**
 * Whether `proof` shows the leaf hash `leaf` at `index` in a tree of `size`
 * leaves whose root is `root` (RFC 9162 §2.1.3.2). Never throws.
 */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false
  if (proof.length > maxProofLength(size)) return false
  let fn = index
  let sn = size - 1
  let r: Buffer = Buffer.from(leaf)
  for (const p of proof) {
    if (p.length !== 32) return false
    if (sn === 0) return false
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r)
      if ((fn & 1) === 0) while ((fn & 1) === 0 && fn !== 0) { fn >>= 1; sn >>= 1 }
    } else {
      r = nodeHash(r, p)
    }
    fn >>= 1
    sn >>= 1
  }
  return sn === 0 && r.length === root.length && r.equals(Buffer.from(root))
}
