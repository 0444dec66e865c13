import t from 'tap'
import { Admission, type WecomLogger } from '../../src/wecom/admission.js'
import { Deadline } from '../../src/wecom/deadline.js'
import { jscode2session, userGet } from '../../src/wecom/endpoints.js'
import { WecomFailFastError } from '../../src/wecom/failures.js'
import { setup } from '../helpers/setup.js'

const quiet: WecomLogger = { debug () {}, info () {}, warn () {}, error () {} }
const admission = () => new Admission({
  breaker: false, refusals: { config: 60_000, frequency: 60_000, concurrency: 5000 }, budget: false, clientShare: 1, log: quiet, telemetry: { breakerChanged () {} }
})

t.test('a login is refused before spending its code when its calls could not all be answered in the time left', async (t) => {
  const policy = admission()
  policy.answered(jscode2session.name, 600)
  policy.answered(userGet.name, 600)
  const scope = (ms: number) => ({ deadline: new Deadline(ms), corpId: 'ww1', app: 'ww1:app' })
  const short = scope(1000)
  t.doesNotThrow(() => policy.check([jscode2session, userGet], short, 0), 'one login a second goes all the same, to correct a stale estimate')
  const error = (() => { try { policy.check([jscode2session, userGet], short, 0) } catch (e) { return e } })()
  t.match(error, WecomFailFastError, 'about 1,200 ms of calls for 1,000 left')
  t.equal((error as WecomFailFastError).reason, 'deadline')
  const long = scope(5000)
  t.doesNotThrow(() => policy.check([jscode2session, userGet], long, 0), 'with 5 s left they go')
  t.throws(() => policy.check([jscode2session, userGet], long, 4000), 'unless calls queue locally for 4 s first')
  for (const s of [short, long]) s.deadline.clear()
})

t.test('an errcode outside the table, to the host\'s own call, is the API\'s answer: not logged as a configuration error', async (t) => {
  const h = await setup(t)
  h.sim.inject('message/send', { errcode: 81013 }, 2)
  for (let i = 0; i < 2; i++) {
    t.match(await h.app.wecom.api().post('/cgi-bin/message/send', { touser: 'x' }).catch((e: unknown) => e), { code: 'WECOM_API_ERROR', errcode: 81013 })
  }
  const said = h.logs.records.filter((r) => /81013/.test(String(r.msg)))
  t.ok(said.every((r) => (r.level as number) <= 20), 'debug at most')
  t.notOk(h.logs.records.some((r) => /configuration error/.test(String(r.msg))), 'no configuration error said')
})

t.test('an answer without its fields is logged once per change, like any other unusable answer', async (t) => {
  const h = await setup(t)
  t.equal((await h.login('zhangsan')).statusCode, 200)
  h.sim.inject('user/get', { errcode: 0 }, 3)
  for (let i = 0; i < 3; i++) t.equal((await h.login('zhangsan')).statusCode, 502)
  const said = h.logs.records.filter((r) => /user\/get gave an unusable answer/.test(String(r.msg)))
  t.equal(said.filter((r) => r.level === 50).length, 1, 'one error line')
  t.ok(said.length >= 3 && said.every((r) => r.level === 50 || (r.level as number) <= 20), 'the repeats at debug')
  t.equal((await h.login('zhangsan')).statusCode, 200)
  t.ok(h.logs.records.some((r) => r.msg === 'wecom: user/get answers again'), 'and its end said')
})

t.test('one gettoken failure, one warning', async (t) => {
  const h = await setup(t)
  h.sim.inject('gettoken', { drop: true })
  t.equal((await h.login('zhangsan')).statusCode, 503)
  const warned = h.logs.records.filter((r) => (r.level as number) >= 40 && /gettoken/.test(String(r.msg)))
  t.equal(warned.length, 1, warned.map((r) => r.msg).join(' | '))
  t.match(String(warned[0].msg), /remembered|next gettoken/, 'saying what is remembered and for how long')
})

t.test('gettoken answering HTML backs off like any gettoken failure: one call, not one per login', async (t) => {
  const h = await setup(t)
  h.sim.inject('gettoken', { malformed: true }, Infinity)
  for (let i = 0; i < 10; i++) t.equal((await h.login('zhangsan')).statusCode, 503)
  t.equal(h.sim.calls.gettoken, 1)
})
