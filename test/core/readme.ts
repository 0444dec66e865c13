import { readFileSync } from 'node:fs'
import t from 'tap'
import * as errors from '../../src/errors.js'
import { errcodes, type ErrcodeInfo } from '../../src/wecom/errcodes.js'

// The README's tables of errcodes and errors are what users read to handle failures: they must be
// the ones the code uses, so that a row cannot be added, dropped or changed on one side only.

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

/** The rows of the first Markdown table after `heading`, as trimmed cells, the header row left out. */
function tableAfter (markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n')
  const start = lines.indexOf(heading)
  if (start === -1) throw new Error(`no "${heading}" in the README`)
  const rows: string[][] = []
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('#')) break
    if (!line.startsWith('|')) {
      if (rows.length > 0) break
      continue
    }
    // A cell may hold an escaped pipe (`\|`); the outer pipes leave an empty first and last cell.
    rows.push(line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim()))
  }
  return rows.slice(2)
}

/** Status codes a cell names: three-digit numbers from 400 to 599 standing alone. */
function statuses (cell: string): Set<number> {
  return new Set([...cell.matchAll(/(?<![\d-])[45]\d\d(?!\d)/g)].map((match) => Number(match[0])))
}

interface Expected { required: number[], allowed: number[], words: string[] }

/** What the answer column must say for an errcode of this class (outcome.ts, admission.ts). */
function expectedAnswer (info: ErrcodeInfo): Expected {
  switch (info.class) {
    // 502 from an endpoint that took no client's code (outcome.ts).
    case 'code': return { required: [401, 502], allowed: [401, 502], words: ['WECOM_INVALID_CODE', 'WECOM_UPSTREAM_ERROR'] }
    case 'forbidden': return { required: [403], allowed: [403, 502], words: ['WECOM_USER_FORBIDDEN', 'user/get'] }
    case 'retry':
    case 'limited': return { required: [503], allowed: [503], words: ['WECOM_UNAVAILABLE'] }
    // A fresh token refused answers 503, unless the code then names the app's configuration (502).
    case 'token': return info.window === 'config'
      ? { required: [502, 503], allowed: [502, 503], words: ['refreshed once'] }
      : { required: [503], allowed: [503], words: ['refreshed once'] }
    case 'config': return { required: [502], allowed: [502], words: ['WECOM_UPSTREAM_ERROR'] }
    case 'unknown': return { required: [502], allowed: [502], words: [] }
  }
}

interface ErrcodeRow { meaning: string, answer: string, remembered: string }

function errcodeRows (markdown: string): Map<number, ErrcodeRow> {
  const rows = new Map<number, ErrcodeRow>()
  for (const [codes, meaning, answer, remembered] of tableAfter(markdown, '### WeCom errcodes')) {
    for (const match of codes.matchAll(/-?\d+/g)) {
      const errcode = Number(match[0])
      if (rows.has(errcode)) throw new Error(`errcode ${errcode} has two rows`)
      rows.set(errcode, { meaning, answer, remembered })
    }
  }
  return rows
}

/** Every way the README's errcode table disagrees with the code's, as sentences; none when they agree. */
function errcodeMismatches (markdown: string): string[] {
  const rows = errcodeRows(markdown)
  const problems: string[] = []
  for (const errcode of rows.keys()) {
    if (errcodes[errcode] === undefined) problems.push(`${errcode} is in the README but not in src/wecom/errcodes.ts`)
  }
  for (const [key, info] of Object.entries(errcodes)) {
    const errcode = Number(key)
    const row = rows.get(errcode)
    if (row === undefined) {
      problems.push(`${errcode} (${info.class}) has no row in the README`)
      continue
    }
    if (row.meaning === '') problems.push(`${errcode}: no meaning`)
    const expected = expectedAnswer(info)
    const said = statuses(row.answer)
    for (const status of expected.required) {
      if (!said.has(status)) problems.push(`${errcode} (${info.class}): the answer does not say ${status}: "${row.answer}"`)
    }
    for (const status of said) {
      if (!expected.allowed.includes(status)) problems.push(`${errcode} (${info.class}): the answer says ${status}: "${row.answer}"`)
    }
    for (const word of expected.words) {
      if (!row.answer.includes(word)) problems.push(`${errcode} (${info.class}): the answer does not say ${word}: "${row.answer}"`)
    }
    if (info.window !== undefined) {
      if (!row.remembered.includes(`api.refusals.${info.window}`)) {
        problems.push(`${errcode}: remembered for api.refusals.${info.window}, which the README does not say: "${row.remembered}"`)
      }
    } else if (row.remembered.includes('api.refusals.')) {
      problems.push(`${errcode} opens no window, but the README says one: "${row.remembered}"`)
    } else if ((info.class === 'token' || info.class === 'retry') && !row.remembered.includes('back-off')) {
      problems.push(`${errcode} (${info.class}) backs gettoken off, which the README does not say: "${row.remembered}"`)
    }
  }
  return problems
}

/** The public errors of src/errors.ts: the code and status of each constructor's error. */
function publicErrors (): Map<string, number> {
  const found = new Map<string, number>()
  for (const [name, value] of Object.entries(errors)) {
    // The constructors, not the helpers beside them (isWecomError, unavailable, …).
    if (!/^[A-Z]\w*Error$/.test(name) || typeof value !== 'function') continue
    const error = new (value as new (...args: unknown[]) => { code: string, statusCode: number })('x', 0)
    found.set(error.code, error.statusCode)
  }
  return found
}

/** Every error of src/errors.ts missing from the README's Errors table, or listed with another status. */
function errorMismatches (markdown: string): string[] {
  const listed = new Map<string, number[]>()
  for (const [status, code] of tableAfter(markdown, '## Errors')) {
    const name = code.replaceAll('`', '')
    listed.set(name, [...(listed.get(name) ?? []), Number(status)])
  }
  const problems: string[] = []
  for (const [code, status] of publicErrors()) {
    const statusesListed = listed.get(code)
    if (statusesListed === undefined) problems.push(`${code} is not in the README's Errors table`)
    else if (!statusesListed.includes(status)) problems.push(`${code} is listed as ${statusesListed.join(', ')}, answered as ${status}`)
  }
  return problems
}

t.test('the README\'s WeCom errcodes table is the one src/wecom/errcodes.ts holds', async (t) => {
  t.ok(errcodeRows(README).size >= Object.keys(errcodes).length, 'the table parses')
  t.same(errcodeMismatches(README), [])
})

t.test('the check fails when the README drops a row or changes an answer', async (t) => {
  const dropped = README.replace(/^\| 45033 \|.*\n/m, '')
  t.not(dropped, README, 'the row was there to drop')
  t.match(errcodeMismatches(dropped), [/45033 \(limited\) has no row/])

  const changed = README.replace(/^(\| 40029, 41008, 42013 \|[^|]*\| )401 /m, '$1403 ')
  t.not(changed, README, 'the answer was there to change')
  t.match(errcodeMismatches(changed).join('\n'), /40029 \(code\): the answer does not say 401/)

  const unpaused = README.replace(/^(\| 45009 \|.*)`api\.refusals\.frequency`/m, '$1no')
  t.not(unpaused, README)
  t.match(errcodeMismatches(unpaused).join('\n'), /45009: remembered for api\.refusals\.frequency/)

  const extra = README.replace(/^(\| 48002 \|)/m, '| 12345 | made up | 502 | no |\n$1')
  t.match(errcodeMismatches(extra).join('\n'), /12345 is in the README but not in src/)
})

t.test('the README\'s Errors table lists every error of src/errors.ts with its status', async (t) => {
  t.ok(publicErrors().size >= 20, 'the errors are found')
  t.same(errorMismatches(README), [])
  const dropped = README.replace(/^\| 503 \| `WECOM_CALLBACK_RETRY` \|.*\n/m, '')
  t.not(dropped, README)
  t.same(errorMismatches(dropped), ['WECOM_CALLBACK_RETRY is not in the README\'s Errors table'])
})
