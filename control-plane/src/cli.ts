#!/usr/bin/env node
/** The `writ` command's entry point; the commands live in `cli/`. */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { runCli } from './cli/index.js'

export { runCli }

// Also when started through the npm bin symlink.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runCli(process.argv.slice(2)).then((code) => { if (code >= 0) process.exitCode = code })
}
