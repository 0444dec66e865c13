// How a bad option reads in the error that fails the boot: named by its path, as the host wrote it.
import type { z } from 'zod'

/** The message of a missing or mistyped value: `is required`, or `must be <what>`. */
export const required = (what: string) => ({
  error: (issue: { input: unknown }) => issue.input === undefined ? 'is required' : `must be ${what}`
})

/**
 * Every object of options refuses a key it does not know, which would else be a misspelt option
 * silently ignored. Its issue's message is the keys it knows, read off the object's own schema,
 * for resolveOptions to name them beside the bad one.
 */
export const strict = (what = 'an object') => ({
  error: (issue: { code?: string, input: unknown, inst?: unknown }) => issue.code === 'unrecognized_keys'
    ? Object.keys((issue.inst as z.ZodObject).shape).join(', ')
    : issue.input === undefined ? 'is required' : `must be ${what}`
})

function describePath (path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, segment) =>
    typeof segment === 'number' ? `${out}[${segment}]` : out === '' ? String(segment) : `${out}.${String(segment)}`, '')
}

interface Issue { path: readonly PropertyKey[], message: string, code?: string, keys?: string[], errors?: Issue[][] }

/**
 * A union that no branch matched (`false` or an object) reports itself as a whole; when one
 * branch got further, into the object, its issue names the option better: `api.breaker.failures
 * must be positive` rather than `api.breaker must be an object or false`.
 */
function innermost (issue: Issue): Issue {
  if (issue.code !== 'invalid_union' || issue.errors === undefined) return issue
  const deepest = issue.errors.flat().reduce<Issue | undefined>((best, candidate) =>
    candidate.path.length > (best?.path.length ?? 0) ? candidate : best, undefined)
  return deepest === undefined ? issue : innermost({ ...deepest, path: [...issue.path, ...deepest.path] })
}

/** A key no object of options knows, named with its path, beside the keys its object takes (`strict`). */
function describeUnknown ({ path, keys = [], message: known }: Issue): string {
  const where = describePath(path)
  const names = keys.map((key) => `"${describePath([...path, key])}"`).join(', ')
  const option = keys.length === 1 ? 'option' : 'options'
  return where === '' ? `unknown ${option} ${names}: the known options are ${known}` : `unknown ${option} ${names} (${where} takes ${known})`
}

/** The sentence after `fastify-wecom-auth: ` for the first issue zod found in the options. */
export function describeIssue (first: Issue): string {
  const issue = innermost(first)
  if (issue.code === 'unrecognized_keys') return describeUnknown(issue)
  const where = describePath(issue.path)
  return `${where === '' ? 'options' : where} ${issue.message}`
}
