/**
 * The `lines` parser: output as an array of lines, without line terminators.
 */

/** Splits on `\n` (dropping a `\r` before it); the empty piece after a final newline is not a line. */
export function parseLines(stdout: string): string[] {
  if (stdout === '') return []
  const lines = stdout.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
  if (lines[lines.length - 1] === '') lines.pop()
  return lines
}
