import t from 'tap'
import { apiEndpoint, authGetUserDetail, authGetUserInfo, getAgentTicket, getJsapiTicket } from '../../src/wecom/endpoints.js'
import { describeErrcode } from '../../src/wecom/errcodes.js'

t.test('auth/getuserinfo: a member and an outsider are told apart', async (t) => {
  const parse = (answer: object) => authGetUserInfo.answer.safeParse({ errcode: 0, errmsg: 'ok', ...answer })
  t.match(parse({ userid: 'zhangsan', user_ticket: 'T' }).data, { kind: 'member', userid: 'zhangsan', user_ticket: 'T' })
  t.match(parse({ userid: 'zhangsan' }).data, { kind: 'member', userid: 'zhangsan', user_ticket: undefined }, 'snsapi_base: no ticket')
  t.match(parse({ userid: 'wwlinked/lisi' }).data, { userid: 'wwlinked/lisi' }, 'a linked corp\'s member kept as given')
  t.match(parse({ openid: 'oX', external_userid: 'wmE' }).data, { kind: 'outsider', openid: 'oX', external_userid: 'wmE' })
  t.match(parse({ openid: 'oX', external_userid: '' }).data, { kind: 'outsider', external_userid: undefined })
  t.notOk(parse({ UserId: 'zhangsan' }).success, 'the old upper-case fields are not WeCom\'s answer here')
  t.notOk(parse({}).success, 'neither a member nor an outsider: malformed')
  t.notOk(parse({ userid: 'zhangsan', user_ticket: 'x'.repeat(513) }).success, 'a ticket past 512 bytes is not WeCom\'s')
  t.ok(authGetUserInfo.clientInput, 'the code is the client\'s: it spends the client\'s share')
})

t.test('auth/getuserdetail: userid required, the other fields as given, empty ones absent', async (t) => {
  const parsed = authGetUserDetail.answer.parse({ errcode: 0, userid: 'zhangsan', gender: '1', mobile: '13800000000', email: '', biz_mail: 42, avatar: 'https://a' })
  const given = Object.fromEntries(Object.entries(parsed).filter(([, value]) => value !== undefined))
  t.same(given, { userid: 'zhangsan', gender: '1', avatar: 'https://a', mobile: '13800000000' }, 'empty and mistyped fields absent')
  t.equal(authGetUserDetail.answer.parse({ userid: 'u', gender: 2 }).gender, '2', 'a numeric gender kept, as a string')
  t.notOk(authGetUserDetail.answer.safeParse({ mobile: '1' }).success)
  t.equal(authGetUserDetail.method, 'POST')
  t.equal(authGetUserDetail.memberCheck, true, 'a member out of range there is the member\'s answer (403)')
})

t.test('the two JS-SDK tickets: same answer, WeCom\'s hourly limits on the rows', async (t) => {
  for (const spec of [getJsapiTicket, getAgentTicket]) {
    t.same(spec.answer.parse({ errcode: 0, errmsg: 'ok', ticket: 'T', expires_in: 7200 }), { ticket: 'T', expires_in: 7200 })
    t.notOk(spec.answer.safeParse({ errcode: 0, ticket: '', expires_in: 7200 }).success)
    t.notOk(spec.answer.safeParse({ errcode: 0, ticket: 'T' }).success)
  }
  t.same(getJsapiTicket.hourlyLimit, { corp: 400, app: 100 }, 'doc 90506')
  t.same(getAgentTicket.hourlyLimit, { app: 100 }, 'doc 90506')
  t.equal(apiEndpoint('/cgi-bin/ticket/get', 'GET')?.name, 'ticket/get', 'the host\'s own call shares the row\'s breaker')
})

t.test('the web errcodes: a bad OAuth code is the client\'s, the rest this server\'s setup, never remembered', async (t) => {
  t.equal(describeErrcode(40029).class, 'code')
  for (const errcode of [40093, 50001, 80001]) {
    t.equal(describeErrcode(errcode).class, 'config', String(errcode))
    t.equal(describeErrcode(errcode).window, undefined, `${errcode}: a client chooses the URL, so no window`)
  }
})
