/**
 * The `json` parser: one JSON document, or JSON Lines (one document per line,
 * as `docker … --format json` and `lsblk -J` streams print).
 */

/** Thrown when output is neither a JSON document nor JSON Lines. */
export class JsonOutputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'JsonOutputError'
  }
}

/**
 * Parses a JSON document; if that fails and every non-blank line is a JSON
 * document of its own, returns them as an array.
 * @throws {JsonOutputError} for empty output or text that is neither.
 */
export function parseJsonOutput(stdout: string): unknown {
  if (stdout.trim() === '') throw new JsonOutputError('empty output (expected JSON)')
  let whole: Error
  try { return JSON.parse(stdout) } catch (e) { whole = e as Error }
  const lines = stdout.split('\n').filter((l) => l.trim() !== '')
  if (lines.length > 1) {
    const docs: unknown[] = []
    for (const [i, line] of lines.entries()) {
      try { docs.push(JSON.parse(line)) } catch (e) {
        throw new JsonOutputError(`output is not JSON (${whole.message}) nor JSON Lines (non-blank line ${i + 1}: ${(e as Error).message})`, { cause: whole })
      }
    }
    return docs
  }
  throw new JsonOutputError(`output is not JSON: ${whole.message}`, { cause: whole })
}
