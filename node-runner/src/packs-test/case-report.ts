/**
 * What `packs test` prints: one line per case (`ok`, `FAIL` with what was
 * expected and what came back, `skip` with why), a line per pack, and the
 * closing `cases: N passed, N failed, N skipped` that CI reads.
 */
export interface Tally { passed: number, failed: number, skipped: number }

export const emptyTally = (): Tally => ({ passed: 0, failed: 0, skipped: 0 })

/** Control characters never reach the terminal from a case name or an output excerpt. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export class CaseReport {
  readonly total = emptyTally()
  private pack = emptyTally()

  constructor(private readonly write: (line: string) => void) {}

  ok(pack: string, name: string): void { this.count('passed'); this.write(`ok    ${pack}: ${oneLine(name)}`) }
  fail(pack: string, name: string, problems: readonly string[]): void { this.count('failed'); this.write(`FAIL  ${pack}: ${oneLine(name)}: ${oneLine(problems.join('; '))}`) }
  skip(pack: string, name: string, reason: string): void { this.count('skipped'); this.write(`skip  ${pack}: ${oneLine(name)}: ${oneLine(reason)}`) }
  note(text: string): void { this.write(`# ${oneLine(text)}`) }
  error(text: string): void { this.count('failed'); this.write(`error: ${oneLine(text)}`) }

  /** Starts a pack's tally; `endPack` prints it. */
  startPack(): void { this.pack = emptyTally() }
  endPack(pack: string, dir: string, seconds: number): void {
    const t = this.pack
    this.write(`pack ${pack} (${oneLine(dir)}): ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped (${seconds.toFixed(1)} s)`)
  }

  summary(): string { return `cases: ${this.total.passed} passed, ${this.total.failed} failed, ${this.total.skipped} skipped` }

  private count(k: keyof Tally): void { this.total[k]++; this.pack[k]++ }
}
