/**
 * The plan root both daemons compute: an RFC 9162 Merkle tree whose every
 * inclusion proof verifies, is at most ⌈log₂N⌉ hashes, and fails for any
 * other leaf, position, size or root.
 */
import t from 'tap'
import { MerkleTree, maxProofLength, merkleLeafHash, parsePlanRunId, planRunId, verifyInclusion } from '@writ/packs/protocol'

t.test('every leaf of trees of 1 to 70 leaves proves its inclusion, and nothing else does', async (t) => {
  let checked = 0
  for (let n = 1; n <= 70; n++) {
    const leaves = Array.from({ length: n }, (_, i) => merkleLeafHash(`leaf ${i} of ${n}`))
    const tree = new MerkleTree(leaves)
    for (let i = 0; i < n; i++) {
      const proof = tree.proof(i)
      if (proof.length > maxProofLength(n)) t.fail(`proof of ${i}/${n} is ${proof.length} long`)
      if (!verifyInclusion(leaves[i] as Buffer, i, n, proof, tree.root)) t.fail(`leaf ${i} of ${n} does not verify`)
      if (n > 1 && verifyInclusion(leaves[(i + 1) % n] as Buffer, i, n, proof, tree.root)) t.fail(`another leaf verifies at ${i}/${n}`)
      if (n > 1 && verifyInclusion(leaves[i] as Buffer, (i + 1) % n, n, proof, tree.root)) t.fail(`leaf ${i} of ${n} verifies at another position`)
      if (verifyInclusion(leaves[i] as Buffer, i, n + 1, proof, tree.root) && maxProofLength(n + 1) === proof.length && n > 1) {
        // A proof for n can coincide with one for n+1 only where the tree shapes agree; the root then differs.
        const bigger = new MerkleTree([...leaves, merkleLeafHash('extra')])
        if (bigger.root.equals(tree.root)) t.fail('two sizes share a root')
      }
      checked++
    }
  }
  t.equal(checked, (70 * 71) / 2, 'all proofs checked')
})

t.test('a leaf never passes for an inner node', async (t) => {
  const leaves = [merkleLeafHash('a'), merkleLeafHash('b')]
  const tree = new MerkleTree(leaves)
  t.notOk(verifyInclusion(Buffer.concat(leaves), 0, 2, [], tree.root), 'two leaves glued are not a leaf')
})

t.test('a target run id names its plan and position', async (t) => {
  const id = 'p00mabcdef12345678'.slice(0, 18)
  const runId = planRunId(id, 42)
  t.same(parsePlanRunId(runId), { planId: id, position: 42 })
  t.equal(parsePlanRunId('r00mabcdef12345678'), undefined)
  t.equal(parsePlanRunId(`${id}-042`), undefined, 'no leading zeros: one position, one run id')
})
