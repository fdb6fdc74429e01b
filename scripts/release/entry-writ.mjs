/**
 * Entry of the `writ` single executable. The control plane's `cli.js` only
 * starts itself when it is the process's main ES module (an `import.meta.url`
 * check), which a CommonJS SEA bundle never is, so this calls `runCli`
 * directly. `--version` is answered here from the version baked in at build
 * time (the control-plane package version).
 */
import { runCli } from '../../control-plane/dist/cli.js'

/* global WRIT_RELEASE_VERSION */
const argv = process.argv.slice(2)
if (argv[0] === '--version' || argv[0] === 'version') {
  process.stdout.write(`writ ${WRIT_RELEASE_VERSION}\n`)
} else {
  runCli(argv).then((code) => { if (code >= 0) process.exitCode = code }, (err) => {
    process.stderr.write(`writ: ${err?.stack ?? String(err)}\n`)
    process.exitCode = 1
  })
}
