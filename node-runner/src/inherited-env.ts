/**
 * The part of the runner's own environment its commands inherit: only the
 * names the operator configured (`--inherit-env`), read when each run starts.
 * Packs read credentials from the host (`REDISCLI_AUTH`, `PGPASSWORD`), and a
 * command's environment is otherwise scrubbed to PATH, LANG and LC_ALL.
 */
export function inheritedFrom(names: readonly string[], environment: () => NodeJS.ProcessEnv): () => Record<string, string> {
  return () => {
    const env = environment()
    const picked: Record<string, string> = {}
    for (const name of names) {
      const v = env[name]
      if (v !== undefined) picked[name] = v
    }
    return picked
  }
}
