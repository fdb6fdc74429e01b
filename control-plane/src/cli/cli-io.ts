/** What every `writ` command shares: its output streams and environment, and the usage error. */
export class UsageError extends Error {
  constructor(message: string) { super(message); this.name = 'UsageError' }
}

export interface Io { out: (s: string) => void, err: (s: string) => void, env: NodeJS.ProcessEnv }
