/**
 * `writ-node-runner watchdog multipath [flags]` (being built).
 */
export async function runWatchdogCommand(argv: string[]): Promise<number> {
  process.stderr.write(`watchdog multipath: not available yet (${argv.length} args)\n`)
  return 2
}
