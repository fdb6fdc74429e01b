/**
 * The characters that make text read differently from what it holds, in one
 * place for every check that refuses them: argument values (both daemons) and
 * the free text an agent or a person writes for others to read (reason,
 * expected outcome, comment, deny reason).
 *
 * A terminal obeys control characters (ESC and CSI sequences move the cursor
 * and erase lines); a line separator starts a new line on a page or under a
 * pattern's m flag; a bidi override reorders what follows. Any of them lets
 * text show something other than what it says.
 */

/**
 * C0 controls except tab, DEL, the C1 controls (U+0085 is a newline to some
 * programs, U+009B is CSI) and the Unicode line and paragraph separators.
 */
const CONTROL = '\\u0000-\\u0008\\u000a-\\u001f\\u007f-\\u009f\\u2028\\u2029'

/**
 * The bidi formatting characters: ALM, LRM and RLM, the embeddings and
 * overrides (LRE, RLE, PDF, LRO, RLO) and the isolates (LRI, RLI, FSI, PDI).
 */
const BIDI = '\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069'

/** Matches one character a value must not carry. */
export const UNSAFE_CHARACTER = new RegExp(`[${CONTROL}${BIDI}]`)

const NAMES: Record<number, string> = {
  0x00: 'NUL', 0x07: 'BEL', 0x08: 'BACKSPACE', 0x0a: 'LINE FEED', 0x0b: 'LINE TABULATION', 0x0c: 'FORM FEED', 0x0d: 'CARRIAGE RETURN',
  0x1b: 'ESCAPE', 0x7f: 'DELETE', 0x85: 'NEXT LINE', 0x9b: 'CONTROL SEQUENCE INTRODUCER',
  0x2028: 'LINE SEPARATOR', 0x2029: 'PARAGRAPH SEPARATOR',
  0x061c: 'ARABIC LETTER MARK', 0x200e: 'LEFT-TO-RIGHT MARK', 0x200f: 'RIGHT-TO-LEFT MARK',
  0x202a: 'LEFT-TO-RIGHT EMBEDDING', 0x202b: 'RIGHT-TO-LEFT EMBEDDING', 0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE', 0x202e: 'RIGHT-TO-LEFT OVERRIDE',
  0x2066: 'LEFT-TO-RIGHT ISOLATE', 0x2067: 'RIGHT-TO-LEFT ISOLATE', 0x2068: 'FIRST STRONG ISOLATE', 0x2069: 'POP DIRECTIONAL ISOLATE',
}

export interface UnsafeCharacter {
  /** Where it is, in UTF-16 code units from the start. */
  index: number
  /** `U+001B` */
  codePoint: string
  /** `U+001B ESCAPE`, or the code point alone for the controls without a common name. */
  label: string
}

/** The first character of `text` that no shown text may carry, or undefined. */
export function findUnsafeCharacter(text: string): UnsafeCharacter | undefined {
  const m = UNSAFE_CHARACTER.exec(text)
  if (!m) return undefined
  const cp = m[0].charCodeAt(0)
  const codePoint = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`
  const name = NAMES[cp] ?? (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ? 'control character' : undefined)
  return { index: m.index, codePoint, label: name ? `${codePoint} ${name}` : codePoint }
}
