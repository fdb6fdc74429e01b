/** The `writ` command: its subcommands, HTTP client and dev stack. */
export { runCli } from './writ-command.js'
export { UsageError } from './cli-io.js'
