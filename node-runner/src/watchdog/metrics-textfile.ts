/**
 * The node_exporter textfile (`writ_multipath.prom`), replaced atomically:
 * written to a temporary file in the same directory, then renamed over the
 * old one, so the collector never reads half a file.
 */
import { randomBytes } from 'node:crypto'
import { open, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'

export const TEXTFILE_NAME = 'writ_multipath.prom'

/** Writes `content` to `<dir>/writ_multipath.prom` via temp file + fsync + rename. */
export async function writeMetricsTextfile(dir: string, content: string): Promise<string> {
  const target = join(dir, TEXTFILE_NAME)
  // node_exporter only reads *.prom, so the temporary name is never collected.
  const temp = join(dir, `.${TEXTFILE_NAME}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const fh = await open(temp, 'w', 0o644)
  try {
    await fh.writeFile(content)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(temp, target)
  } catch (e) {
    await unlink(temp).catch(() => undefined)
    throw e
  }
  return target
}
