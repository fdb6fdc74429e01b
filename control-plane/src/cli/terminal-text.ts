/**
 * Text from the control plane made safe to print on a terminal. Anything the
 * CLI prints came from someone else — an agent's reason, a node's name from
 * its heartbeat, a command's output — and a terminal obeys what it prints:
 * ESC and CSI sequences move the cursor and erase lines, a carriage return
 * overwrites, a bidi override reorders. So every character that is not
 * plainly visible is shown as its `\uXXXX` escape instead; the same escape
 * keeps JSON valid, so JSON output goes through it too.
 */

/**
 * Controls, format characters (bidi, zero-width), line and paragraph
 * separators, lone surrogates, private-use and unassigned code points.
 */
const NOT_VISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}]/gu
/** The same, but newline and tab stay: multi-line output keeps its lines. */
const NOT_VISIBLE_IN_BLOCK = /(?![\n\t])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}]/gu

function escapeUnits(ch: string): string {
  let out = ''
  for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0')}`
  return out
}

/** One line of text: every character that is not plainly visible, newlines included, as `\uXXXX`. */
export function terminalLine(text: string): string {
  return text.replace(NOT_VISIBLE, escapeUnits)
}

/** Multi-line text (a command's output): as `terminalLine`, but newlines and tabs stay. */
export function terminalBlock(text: string): string {
  return text.replace(NOT_VISIBLE_IN_BLOCK, escapeUnits)
}

/**
 * JSON for a terminal: `JSON.stringify` leaves DEL, the C1 controls, bidi
 * overrides and line separators raw inside strings; escaped as `\uXXXX` the
 * document still parses to the same value. The newlines left are the
 * indentation's (JSON escapes those inside strings).
 */
export function terminalJson(value: unknown, space?: number): string {
  return terminalBlock(JSON.stringify(value, null, space))
}
