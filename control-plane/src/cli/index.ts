/** The `writ` command: its subcommands, HTTP client and dev stack. */
export { runCli, UsageError } from './writ-command.js'
