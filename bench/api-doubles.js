// The Nomad and Docker API doubles the tests use (test/doubles/*.ts) and the
// throwaway CA (test/helpers/test-pki.ts), built
// with esbuild into a temporary folder so a plain-JS bench can start them:
// the same wire format from ../shared/fixtures, no second double.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const root = resolve(new URL('..', import.meta.url).pathname)

/** `{ startNomadDouble, allocationLike, startDockerDouble, createTestPki, close }`; `close()` removes the build. */
export async function loadApiDoubles() {
  const out = mkdtempSync(join(tmpdir(), 'writ-bench-doubles-'))
  await build({
    entryPoints: [join(root, 'test', 'doubles', 'nomad-api.ts'), join(root, 'test', 'doubles', 'docker-api.ts'), join(root, 'test', 'helpers', 'test-pki.ts')],
    outdir: out, outbase: join(root, 'test'), bundle: true, platform: 'node', format: 'esm', logLevel: 'error',
    // fixtures-dir.ts finds the repository from its own location; the bundle lives elsewhere.
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(root, 'test', 'doubles', 'fixtures-dir.ts')).href) },
  })
  const nomad = await import(pathToFileURL(join(out, 'doubles', 'nomad-api.js')).href)
  const docker = await import(pathToFileURL(join(out, 'doubles', 'docker-api.js')).href)
  const pki = await import(pathToFileURL(join(out, 'helpers', 'test-pki.js')).href)
  return { ...nomad, ...docker, ...pki, close: () => rmSync(out, { recursive: true, force: true }) }
}
