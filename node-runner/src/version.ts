/** The runner's version, reported in heartbeats and `--version` (kept equal to package.json by a test). */
export const RUNNER_VERSION = '0.1.0'
