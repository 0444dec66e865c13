import { z } from 'zod'
import { callbackSettings } from '../events/callback-options.js'
import { required, strict } from '../option-issues.js'

// The options of a service provider's apps (issue 19), beside src/options.ts, which composes them.

const text = () => z.string(required('a non-empty string')).min(1, { error: 'must not be empty' })
/** A CorpID or SuiteID as WeCom writes it: letters and digits (a space or slash would fail every request). */
const wecomId = () => z.string(required('WeCom\'s id, a string')).regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'must be WeCom\'s id: 1 to 64 letters, digits, - or _' })

/**
 * `provider`: the service provider's own CorpID. WeCom encrypts a suite callback's URL check for
 * it, while pushes carry the SuiteId (doc path/95373).
 */
export const providerOptions = z.strictObject({ corpId: wecomId() }, strict())

/**
 * One of `suites`: a third-party app (第三方应用, `third-party`) or a 代开发 template (`custom`), as
 * the provider's admin console shows it: SuiteID, Secret, and its callback's Token and
 * EncodingAESKey.
 */
const suite = z.strictObject({
  suiteId: wecomId(),
  secret: text(),
  ...callbackSettings,
  kind: z.enum(['third-party', 'custom'], { error: 'must be \'third-party\' or \'custom\'' })
}, strict())

export const suitesOptions = z.array(suite, required('an array'))
  .min(1, { error: 'must list at least one suite' })
  .superRefine((suites, ctx) => {
    const seen = new Set<string>()
    suites.forEach(({ suiteId }, index) => {
      if (seen.has(suiteId)) ctx.addIssue({ code: 'custom', path: [index, 'suiteId'], message: `repeats ${suiteId}` })
      seen.add(suiteId)
    })
  })

/**
 * `sealKeys`: what seals permanent codes at rest. The first seals; every one opens, so that a key
 * is rotated by putting the new one first and dropping the old once nothing it sealed is left.
 */
export const sealKeysOptions = z.array(
  z.string(required('a string of at least 32 characters')).min(32, { error: 'must be at least 32 characters' }),
  required('an array of strings')
).min(1, { error: 'must hold at least one key' })

/** The rules that tie `provider`, `suites` and `sealKeys` to each other, added to `ctx` as issues naming the option. */
export function checkSuiteOptions (
  { provider, suites, sealKeys }: { provider?: z.output<typeof providerOptions> | undefined, suites?: SuiteOptions[] | undefined, sealKeys?: string[] | undefined },
  ctx: z.RefinementCtx
): void {
  // A suite's URL check is encrypted for the provider's CorpID, and its permanent codes are sealed.
  if (suites !== undefined && provider === undefined) {
    ctx.addIssue({ code: 'custom', path: ['provider'], message: 'is required with suites: { corpId }, the service provider\'s own CorpID' })
  }
  if (suites !== undefined && sealKeys === undefined) {
    ctx.addIssue({ code: 'custom', path: ['sealKeys'], message: 'is required with suites: the keys that seal permanent codes at rest' })
  }
  // WeCom tells a suite's URL check from its pushes by the receiver id inside: they must differ.
  const same = suites?.findIndex(({ suiteId }) => suiteId === provider?.corpId) ?? -1
  if (same !== -1) ctx.addIssue({ code: 'custom', path: ['suites', same, 'suiteId'], message: 'must differ from provider.corpId' })
  for (const name of ['provider', 'sealKeys'] as const) {
    if (suites === undefined && { provider, sealKeys }[name] !== undefined) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'is for suites (suites: [{ suiteId, secret, token, encodingAESKey, kind }]), and none is given' })
    }
  }
}

export type SuiteOptions = z.output<typeof suite>

/**
 * A corp that installed one of `suites`, as `app.wecom.corps()` lists it and the corp hooks get
 * it: its ids exactly as WeCom wrote them (an encrypted corpid is case-sensitive), never its
 * permanent code. `authorizedAt`: epoch ms of the install.
 */
export interface AuthorizedCorp {
  suiteId: string
  corpId: string
  corpName: string
  agentIds: number[]
  authorizedAt: number
}
