/** What a scenario hands back: one table and the lines under it (ratios, targets, notes). */
export interface Section {
  title: string
  /** One paragraph: what was measured, and how. */
  about: string
  head?: string[]
  rows?: Array<Array<string | number>>
  lines: string[]
}

export function fixed (value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
}

export const ms = (value: number) => `${fixed(value, 1)} ms`
export const times = (value: number) => `${fixed(value, 2)}×`

/** A target line: met or missed, with the measured value and what it was held to. */
export function target (what: string, measured: string, goal: string, met: boolean): string {
  return `${met ? '✅ met' : '❌ MISSED'}: ${what} = ${measured} (target ${goal})`
}

export function markdown (section: Section): string {
  const out = [`## ${section.title}`, '', section.about, '']
  if (section.head !== undefined && section.rows !== undefined) {
    out.push(`| ${section.head.join(' | ')} |`, `|${section.head.map(() => ' --- ').join('|')}|`)
    for (const row of section.rows) out.push(`| ${row.join(' | ')} |`)
    out.push('')
  }
  for (const line of section.lines) out.push(`- ${line}`)
  out.push('')
  return out.join('\n')
}
