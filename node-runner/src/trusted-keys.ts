/**
 * The control plane's public keys a runner trusts (a list, for rotation),
 * read from PEM files that may each hold several keys.
 */
import { readFileSync } from 'node:fs'
import { loadTrustedKey, splitPemBundle, type TrustedKey } from '@writ/packs/protocol'

export function loadTrustedKeys(files: readonly string[]): TrustedKey[] {
  const keys: TrustedKey[] = []
  for (const f of files) for (const pem of splitPemBundle(readFileSync(f, 'utf8'))) keys.push(loadTrustedKey(pem))
  if (keys.length === 0) throw new Error(`no Ed25519 public key found in ${files.join(', ')}`)
  return keys
}
