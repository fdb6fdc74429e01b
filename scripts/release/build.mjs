#!/usr/bin/env node
/**
 * Release build: single executables (Node SEA) of the node-runner and the
 * control plane, the versioned packs tarball, and SHA256SUMS.
 *
 *   npm run release                       # tsc -b, then everything into release/v<version>/
 *   node scripts/release/build.mjs [--out DIR] [--extra-packs DIR]... [--only runner,writ,packs]
 *
 * Artifacts (names are the contract the Nomad jobs' `artifact` blocks use):
 *   writ-node-runner-<os>-<arch>   the runner (`run`, `packs check`, `watchdog multipath`)
 *   writ-<os>-<arch>               the control plane and operator CLI (`serve --config FILE`)
 *   writ-packs-<version>.tar.gz    stock packs + the operator's, one folder per pack at the top
 *   SHA256SUMS                     `sha256sum -c` format
 *
 * Reproducible: the same packs give the same tarball; the same sources,
 * node_modules and Node binary give the same executables. The executables
 * embed the build machine's Node binary (`process.execPath`).
 *
 * Exit codes: 0 ok, 1 build failed, 2 usage, 3 this Node cannot build a SEA.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { deterministicTarGz } from './tar.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
// Node's documented sentinel (the postject `--sentinel-fuse`), as compiled into
// every SEA-capable node binary with the suffix ":0" (":1" once a blob is injected).
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const TARGETS = ['runner', 'writ', 'packs']

class SeaUnsupported extends Error {}

function fail(message, code = 1) {
  process.stderr.write(`release: ${message}\n`)
  process.exit(code)
}

function readJson(file) { return JSON.parse(readFileSync(file, 'utf8')) }

function sha256File(file) { return createHash('sha256').update(readFileSync(file)).digest('hex') }

function fmtSize(n) { return `${(n / 1024 / 1024).toFixed(1)} MiB` }

/** One version for the whole release: the three workspaces must agree. */
function releaseVersion() {
  const versions = Object.fromEntries(['packs', 'node-runner', 'control-plane'].map((w) => [w, readJson(join(ROOT, w, 'package.json')).version]))
  const distinct = [...new Set(Object.values(versions))]
  if (distinct.length !== 1) fail(`workspace versions differ: ${JSON.stringify(versions)}`)
  return distinct[0]
}

/** The platform suffix of the executables' names, e.g. `linux-x64`. */
export function platformSuffix() { return `${process.platform}-${process.arch}` }

function checkSeaSupport() {
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (major < 20 || (major === 20 && minor < 0)) throw new SeaUnsupported(`Node ${process.versions.node} has no single-executable support (needs >= 20)`)
  // The fuse string is compiled into every SEA-capable node binary.
  const bin = readFileSync(process.execPath)
  if (bin.indexOf(`${SEA_FUSE}:0`) < 0) throw new SeaUnsupported(`${process.execPath} has no SEA fuse (not built with single-executable support)`)
  let ldd = ''
  try { ldd = execFileSync('ldd', [process.execPath], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) } catch { /* static or no ldd */ }
  if (/libnode\.so/.test(ldd)) throw new SeaUnsupported(`${process.execPath} links libnode.so (a distribution build); a SEA needs a self-contained node binary, e.g. the nodejs.org one`)
}

/**
 * Native add-ons a bundle needs (SEA's `require` loads only built-in
 * modules): each add-on's prebuilt binary rides in the executable as a SEA
 * asset, and its loader is replaced by a shim that writes the asset to a
 * private temporary folder, `process.dlopen`s it and removes the file.
 */
const NATIVE_ADDONS = [
  // @fastify/secure-session (the portal's session cookie) encrypts with libsodium.
  { module: 'sodium-native', loader: /[\\/]sodium-native[\\/]binding\.js$/, asset: 'sodium-native.node', file: (dir) => join(dir, 'prebuilds', `${process.platform}-${process.arch}`, 'sodium-native.node') },
]

const addonShim = (asset) => `const { getAsset } = require('node:sea')
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const dir = mkdtempSync(join(tmpdir(), 'writ-addon-'))
try {
  const file = join(dir, ${JSON.stringify(asset)})
  writeFileSync(file, Buffer.from(getAsset(${JSON.stringify(asset)})), { mode: 0o500 })
  const m = { exports: {} }
  process.dlopen(m, file)
  module.exports = m.exports
} finally { rmSync(dir, { recursive: true, force: true }) }
`

function nativeAddonPlugin(used) {
  return {
    name: 'writ-native-addons',
    setup(build) {
      for (const addon of NATIVE_ADDONS) {
        build.onLoad({ filter: addon.loader }, () => {
          const dir = dirname(createRequire(join(ROOT, 'control-plane', 'package.json')).resolve(`${addon.module}/package.json`))
          const file = addon.file(dir)
          if (!existsSync(file)) throw new Error(`${addon.module}: no prebuilt add-on for ${process.platform}-${process.arch} at ${file}`)
          used.set(addon.asset, file)
          return { contents: addonShim(addon.asset), loader: 'js' }
        })
      }
    },
  }
}

async function bundle(name, entry, outFile, version) {
  const require = createRequire(import.meta.url)
  const { build } = require('esbuild')
  const assets = new Map()
  const result = await build({
    entryPoints: [entry],
    // Module paths in the bundle's comments are relative to this: the same
    // bytes whatever the checkout's location or the caller's cwd.
    absWorkingDir: ROOT,
    outfile: outFile,
    bundle: true,
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    format: 'cjs',
    // SEA's `require` only loads built-in modules: everything else is bundled.
    packages: 'bundle',
    // `writ dev` starts a stack from a source checkout (stock packs, the runner's
    // dist); it has no place in a release executable, which says so instead.
    external: ['./dev-stack.js'],
    define: {
      WRIT_RELEASE_VERSION: JSON.stringify(version),
      // ws tries the optional native add-ons `bufferutil` / `utf-8-validate`;
      // SEA's require cannot load them (and warns). ws's own switches skip them.
      'process.env.WS_NO_BUFFER_UTIL': '"1"',
      'process.env.WS_NO_UTF_8_VALIDATE': '"1"',
    },
    legalComments: 'none',
    logLevel: 'silent',
    metafile: true,
    plugins: [nativeAddonPlugin(assets)],
  })
  // `import.meta` is empty in a CommonJS bundle: only the known "am I the main
  // module" guards may use it (they then stay false, and the entry starts the CLI).
  const allowed = /control-plane\/dist\/(cli|main)\.js$/
  for (const w of result.warnings) {
    const file = w.location?.file ?? ''
    if (w.id === 'empty-import-meta' && allowed.test(file.split(sep).join('/'))) continue
    if (w.id === 'empty-import-meta') throw new Error(`${name}: ${file}:${w.location?.line}: uses import.meta, which is empty in the SEA bundle`)
    process.stderr.write(`release: ${name}: esbuild warning: ${w.text} (${file}:${w.location?.line ?? '?'})\n`)
  }
  const bytes = statSync(outFile).size
  return { bytes, inputs: Object.keys(result.metafile.inputs).length, assets }
}

function buildSea(name, bundleFile, exeFile, work, assets = new Map()) {
  const blob = join(work, `${name}.blob`)
  const config = join(work, `${name}.sea-config.json`)
  // The blob records `main` as written: a relative name (resolved against the
  // work dir) keeps the random temp path out of the executable.
  writeFileSync(config, JSON.stringify({
    main: relative(work, bundleFile),
    output: relative(work, blob),
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    // A V8 code cache would start ~30 ms faster but differs on every build;
    // without it the same sources give the same executable (and checksum).
    useCodeCache: false,
    ...(assets.size > 0 ? { assets: Object.fromEntries(assets) } : {}),
  }, null, 2))
  execFileSync(process.execPath, ['--experimental-sea-config', config], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] })
  rmSync(exeFile, { force: true })
  copyFileSync(process.execPath, exeFile)
  chmodSync(exeFile, 0o755)
  const postject = join(dirname(createRequire(import.meta.url).resolve('postject/package.json')), 'dist', 'cli.js')
  // postject prints a harmless "Can't find string offset for section name" per
  // ELF note; show its output only when it fails.
  try {
    execFileSync(process.execPath, [postject, exeFile, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  } catch (e) {
    throw new Error(`postject failed for ${basename(exeFile)}: ${e.stdout ?? ''}${e.stderr ?? e.message}`)
  }
  chmodSync(exeFile, 0o755)
}

function checkVersion(exeFile, expected) {
  const out = execFileSync(exeFile, ['--version'], { encoding: 'utf8', timeout: 30_000 }).trim()
  if (out !== expected) throw new Error(`${basename(exeFile)} --version printed "${out}", expected "${expected}"`)
  return out
}

/** The pack folders under `dir`: `dir` itself when it is one pack, else its sub-folders (each must be a pack). */
function packFolders(dir, label) {
  const abs = resolve(dir)
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new Error(`${label} pack folder ${abs} is not a directory`)
  if (existsSync(join(abs, 'pack.yaml')) || existsSync(join(abs, 'pack.yml'))) return [{ name: basename(abs), dir: abs, source: label }]
  const out = []
  for (const d of readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (d.name.startsWith('.') || !d.isDirectory()) continue
    const p = join(abs, d.name)
    if (!existsSync(join(p, 'pack.yaml')) && !existsSync(join(p, 'pack.yml'))) throw new Error(`${label} folder ${p} has no pack.yaml (every sub-folder of a pack folder must be a pack)`)
    out.push({ name: d.name, dir: p, source: label })
  }
  return out
}

function collectFiles(dir, prefix, entries) {
  entries.push({ path: prefix, type: 'dir' })
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (d.name.startsWith('.')) continue // editor/VCS litter; the loader ignores dot folders too
    const abs = join(dir, d.name)
    const rel = `${prefix}/${d.name}`
    if (d.isSymbolicLink()) throw new Error(`${abs} is a symbolic link; packs are shipped as plain files`)
    if (d.isDirectory()) collectFiles(abs, rel, entries)
    else if (d.isFile()) entries.push({ path: rel, type: 'file', data: readFileSync(abs), executable: (statSync(abs).mode & 0o100) !== 0 })
    else throw new Error(`${abs} is neither a file nor a directory`)
  }
}

/**
 * The packs tarball: one folder per pack at the top (the runner's `--packs DIR`
 * and the control plane's `packs.dirs` load "a folder of pack folders"), plus
 * `writ-packs.json` naming each pack's id, version, digest and source.
 */
export async function buildPacksTarball({ version, extraDirs, outFile }) {
  const folders = [...packFolders(join(ROOT, 'packs', 'stock'), 'stock'), ...extraDirs.flatMap((d) => packFolders(d, 'extra'))]
  const byName = new Map()
  for (const f of folders) {
    const prior = byName.get(f.name)
    if (prior) throw new Error(`pack folder name "${f.name}" is used twice: ${prior.dir} and ${f.dir}`)
    byName.set(f.name, f)
  }
  const { loadPacks } = await import(pathToFileURL(join(ROOT, 'packs', 'dist', 'index.js')).href)
  const loaded = loadPacks(folders.map((f) => f.dir))
  if (loaded.errors.length > 0) {
    throw new Error(`packs do not load:\n${loaded.errors.map((e) => `  ${e.file}${e.field ? ` (${e.field})` : ''}: ${e.message}`).join('\n')}`)
  }
  const byDir = new Map(loaded.packs.map((p) => [resolve(p.dir), p]))
  const manifest = {
    writ_version: version,
    packs: folders.map((f) => {
      const p = byDir.get(resolve(f.dir))
      return { folder: f.name, id: p.id, version: p.version, digest: p.digest, actions: p.actions.size, source: f.source }
    }),
  }
  const entries = [{ path: 'writ-packs.json', type: 'file', data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) }]
  for (const f of folders) collectFiles(f.dir, f.name, entries)
  writeFileSync(outFile, deterministicTarGz(entries))
  return manifest
}

function writeSums(dir) {
  const files = readdirSync(dir).filter((n) => n !== 'SHA256SUMS' && statSync(join(dir, n)).isFile()).sort()
  const lines = files.map((n) => `${sha256File(join(dir, n))}  ${n}`)
  writeFileSync(join(dir, 'SHA256SUMS'), `${lines.join('\n')}\n`)
  return files.map((n, i) => ({ name: n, bytes: statSync(join(dir, n)).size, sha256: lines[i].slice(0, 64) }))
}

async function main() {
  let opts
  try {
    opts = parseArgs({
      args: process.argv.slice(2),
      options: { out: { type: 'string' }, 'extra-packs': { type: 'string', multiple: true }, only: { type: 'string' }, help: { type: 'boolean' } },
    }).values
  } catch (e) { fail(`${e.message}\nusage: build.mjs [--out DIR] [--extra-packs DIR]... [--only runner,writ,packs]`, 2) }
  if (opts.help) { process.stdout.write('usage: build.mjs [--out DIR] [--extra-packs DIR]... [--only runner,writ,packs]\n'); return }
  const only = opts.only ? opts.only.split(',').map((s) => s.trim()).filter(Boolean) : TARGETS
  for (const t of only) if (!TARGETS.includes(t)) fail(`unknown target "${t}" (known: ${TARGETS.join(', ')})`, 2)

  const version = releaseVersion()
  const outDir = resolve(opts.out ?? join(ROOT, 'release'), `v${version}`)
  mkdirSync(outDir, { recursive: true })
  const suffix = platformSuffix()
  const work = mkdtempSync(join(tmpdir(), 'writ-release-'))
  const t0 = Date.now()
  try {
    const exes = [
      { target: 'runner', name: `writ-node-runner-${suffix}`, entry: join(ROOT, 'node-runner', 'dist', 'cli.js'), expect: `writ-node-runner ${version}` },
      { target: 'writ', name: `writ-${suffix}`, entry: join(ROOT, 'scripts', 'release', 'entry-writ.mjs'), expect: `writ ${version}`, needs: join(ROOT, 'control-plane', 'dist', 'cli.js') },
    ].filter((e) => only.includes(e.target))
    if (exes.length > 0) {
      try { checkSeaSupport() } catch (e) { if (e instanceof SeaUnsupported) fail(`cannot build single executables here: ${e.message}`, 3); throw e }
    }
    for (const e of exes) {
      const ts = Date.now()
      for (const f of [e.entry, e.needs].filter(Boolean)) if (!existsSync(f)) throw new Error(`${relative(ROOT, f)} is missing: run "npx tsc -b" first`)
      const bundleFile = join(work, `${e.name}.cjs`)
      const b = await bundle(e.name, e.entry, bundleFile, version)
      buildSea(e.name, bundleFile, join(outDir, e.name), work, b.assets)
      checkVersion(join(outDir, e.name), e.expect)
      process.stdout.write(`release: ${e.name}: bundle ${fmtSize(b.bytes)} from ${b.inputs} modules, executable built and "--version" checked in ${((Date.now() - ts) / 1000).toFixed(1)} s\n`)
    }
    if (only.includes('packs')) {
      const name = `writ-packs-${version}.tar.gz`
      const manifest = await buildPacksTarball({ version, extraDirs: opts['extra-packs'] ?? [], outFile: join(outDir, name) })
      process.stdout.write(`release: ${name}: ${manifest.packs.map((p) => `${p.id}@${p.version}${p.source === 'extra' ? ' (extra)' : ''}`).join(', ')}\n`)
    }
    const sums = writeSums(outDir)
    process.stdout.write(`\nrelease v${version} in ${relative(process.cwd(), outDir) || '.'} (${((Date.now() - t0) / 1000).toFixed(1)} s):\n`)
    for (const s of sums) process.stdout.write(`  ${s.name.padEnd(34)} ${String(s.bytes).padStart(10)} bytes (${fmtSize(s.bytes).padStart(9)})  sha256:${s.sha256}\n`)
    process.stdout.write('  SHA256SUMS\n')
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => fail(e.stack ?? String(e)))
}
