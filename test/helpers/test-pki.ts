/**
 * A throwaway certificate authority made with the openssl CLI, shaped like
 * the one `nomad tls ca create` / `nomad tls cert create` give a cluster: a CA,
 * agent certificates named `client.global.nomad` (with or without an IP SAN),
 * a client certificate for verify_https_client, and NATS server certificates
 * (serverAuth and clientAuth both, for mutual TLS on routes).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface IssuedCert { cert: string, key: string, certFile: string, keyFile: string }
export interface TestPki {
  dir: string
  caFile: string
  ca: string
  /** Signs a certificate with the given subjectAltName (e.g. "DNS:client.global.nomad,IP:127.0.0.1"). */
  issue(name: string, subjectAltName: string, usage: 'serverAuth' | 'clientAuth' | 'serverAuth,clientAuth'): IssuedCert
  remove(): void
}

const openssl = (cwd: string, args: string[]): void => { execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] }) }
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'writ-pki-'))
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=writ test Nomad CA'])
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    issue(name, subjectAltName, usage) {
      writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${subjectAltName}\nextendedKeyUsage=${usage}\n`)
      openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`])
      openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`])
      const certFile = join(dir, `${name}.pem`)
      const keyFile = join(dir, `${name}.key`)
      return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile }
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
