/**
 * The one check on free text that people read — a run's reason and expected
 * outcome, an approval's comment, a deny reason — whichever surface it came
 * through (REST, MCP, the portal's forms, the CLI). The characters are the
 * ones argument values refuse (`@writ/packs`), so one rule holds everywhere.
 */
import { findUnsafeCharacter } from '@writ/packs'
import { UnsafeText, withDetails } from './http-errors.js'

/**
 * Throws WRIT_ERR_UNSAFE_TEXT naming the first field that holds a control,
 * line-separator or bidi character, and which one; the text itself is never
 * echoed. Undefined fields are skipped.
 */
export function requirePlainText(fields: Record<string, string | undefined>): void {
  for (const [field, text] of Object.entries(fields)) {
    if (text === undefined) continue
    const bad = findUnsafeCharacter(text)
    if (bad) throw withDetails(new UnsafeText(field, bad.label, bad.index), { field, code_point: bad.codePoint, index: bad.index })
  }
}
