/** What every `writ` command shares: its output streams, environment and terminal, the usage error and the exit codes. */
export class UsageError extends Error {
  constructor(message: string) { super(message); this.name = 'UsageError' }
}

export interface Io {
  out: (s: string) => void
  err: (s: string) => void
  env: NodeJS.ProcessEnv
  /** stdin is a terminal a person types at: only then may a command ask (scripts and pipes are never asked). */
  interactive?: boolean
  /** Asks the person at the terminal; resolves with the line they typed. */
  ask?: (question: string) => Promise<string>
}

/** Exit codes a script can tell apart. */
export const EXIT = {
  ok: 0,
  /** The run failed. */
  failed: 1,
  /** A usage error, a refused request, a run that ended any other way than these. */
  error: 2,
  /** The run waits for a person's approval. */
  pending: 3,
  /** The run has not finished yet (`writ status` without enough `--wait`). */
  running: 4,
  /** A person (or policy) denied the run. */
  denied: 5,
  /** The person at the terminal did not confirm; nothing was decided. */
  notConfirmed: 6,
} as const
