import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import fastifyWecomAuth from '../../src/index.js'
import { captureLogs, CORP_A, JWT_SECRET, PATIENT_TIMEOUT, SECRET_A } from '../helpers/setup.js'

// What WeCom answers is read up to 64 KiB (endpoints.ts, SMALL_BODY): past it the answer is
// malformed, whether its length comes first (Content-Length, as WeCom's do) or not (chunked).
const LIMIT = 64 * 1024

type Framing = 'content-length' | 'chunked'

/** A WeCom of the test's own, whose user/get answer is `size` bytes, framed as told. */
async function fakeWecom (t: { teardown (fn: () => unknown): void }, framing: Framing, size: number): Promise<string> {
  const send = (res: ServerResponse, answer: object, pad = 0): void => {
    const text = JSON.stringify(answer)
    const body = pad === 0 ? text : `${text.slice(0, -1)},"pad":"${'x'.repeat(pad - text.length - 9)}"}`
    res.setHeader('content-type', 'application/json')
    if (framing === 'chunked') {
      // Two writes before the end: Node sends chunked framing, no Content-Length.
      res.write(body.slice(0, 10))
      res.end(body.slice(10))
    } else {
      res.setHeader('content-length', Buffer.byteLength(body))
      res.end(body)
    }
  }
  const server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://wecom.test').pathname
    if (path === '/cgi-bin/gettoken') send(res, { errcode: 0, errmsg: 'ok', access_token: 'fake-access-token', expires_in: 7200 })
    else if (path === '/cgi-bin/miniprogram/jscode2session') send(res, { errcode: 0, errmsg: 'ok', corpid: CORP_A, userid: 'zhangsan', session_key: Buffer.alloc(16, 1).toString('base64') })
    else send(res, { errcode: 0, errmsg: 'ok', userid: 'zhangsan', name: 'zhangsan', status: 1 }, size)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

for (const framing of ['content-length', 'chunked'] as const) {
  t.test(`a WeCom answer of ${framing} framing is read up to ${LIMIT} bytes, refused past it`, async (t) => {
    for (const [size, ok] of [[LIMIT, true], [LIMIT + 1, false], [4 * LIMIT, false]] as const) {
      const baseUrl = await fakeWecom(t, framing, size)
      const { stream, capture: logs } = captureLogs()
      const app = Fastify({ logger: { level: 'trace', stream } })
      await app.register(fastifyWecomAuth, { corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET }, api: { baseUrl, timeout: PATIENT_TIMEOUT } })
      t.teardown(() => app.close())
      const login = app.wecom.login('a-code')
      if (ok) {
        t.match(await login, { access_token: String }, `${size} bytes: logged in`)
      } else {
        await t.rejects(login, { code: 'WECOM_UPSTREAM_ERROR', statusCode: 502 }, `${size} bytes: an unusable answer`)
        t.ok(logs.lines.some((line) => line.includes(`body over ${LIMIT} bytes`)), 'the log says why')
      }
    }
  })
}
