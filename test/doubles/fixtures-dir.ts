/**
 * Where the shared, read-only fixtures live: `../shared/fixtures` next to the
 * repository root. Tests read them in place; they are never copied in.
 */
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

/** The repository root (this file is test/doubles/fixtures-dir.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** `../shared/fixtures` relative to the repository root. */
export const FIXTURES_DIR = join(REPO_ROOT, '..', 'shared', 'fixtures')
