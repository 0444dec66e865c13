/**
 * How WeCom's answers look on the wire: always HTTP 200 with a JSON body whose `errcode` (first,
 * with its `errmsg`) tells success from failure, optionally sent one byte at a time.
 */
import type { ServerResponse } from 'node:http'
import type { Timers } from './time.js'

/** An endpoint's answer before it is written: errcode and the fields beside it. */
export type Reply = { errcode: number } & Record<string, unknown>

const ERRMSG: Record<number, string> = {
  [-1]: 'system busy',
  0: 'ok',
  40001: 'invalid credential',
  40002: 'invalid grant_type',
  40008: 'invalid message type',
  40013: 'invalid corpid',
  40014: 'invalid access_token',
  40029: 'invalid code',
  40056: 'invalid agentid',
  40058: 'invalid parameter',
  40066: 'invalid url',
  41002: 'corpid missing',
  41004: 'corpsecret missing',
  41008: 'missing code',
  41009: 'missing userid',
  42001: 'access_token expired',
  43001: 'require GET request',
  43002: 'require POST method',
  47001: 'data format error',
  45009: 'api freq out of limit',
  45033: 'api concurrent out of limit',
  48002: 'api forbidden',
  50001: 'redirect_uri not trusted',
  60011: 'no privilege to access/modify contact/party/agent',
  60020: 'not allow to access from your ip',
  60111: 'userid not found',
}

/** A POSTed body that is a JSON object, or undefined: WeCom answers anything else 47001. */
export function jsonObject (raw: string): Record<string, unknown> | undefined {
  let body: unknown
  try {
    body = JSON.parse(raw)
  } catch {
    return undefined
  }
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? body as Record<string, unknown> : undefined
}

/** Shaped like WeCom's messages, so that nobody is tempted to match on the text. */
export function errmsgFor (errcode: number): string {
  if (errcode === 0) return 'ok'
  const text = ERRMSG[errcode] ?? 'simulated error'
  return `${text}, more info at https://open.work.weixin.qq.com/devtool/query?e=${errcode}`
}

/**
 * Writes the reply, whole or (with `trickle`) one byte every `trickle` ms, and calls `sent` as its
 * last byte goes to the socket (before the client can read it); nothing is written to a socket
 * already destroyed.
 */
export function writeReply (res: ServerResponse, reply: Reply, timers: Timers, sent: () => void, trickle?: number): void {
  if (res.destroyed) return
  // errcode and errmsg come first, as in WeCom's answers.
  const body = Buffer.from(JSON.stringify(Object.assign({ errcode: reply.errcode, errmsg: errmsgFor(reply.errcode) }, reply)))
  res.writeHead(200, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': body.length,
  })
  if (trickle === undefined) {
    sent()
    res.end(body)
    return
  }
  let written = 0
  const next = (): void => {
    if (res.destroyed) return
    res.write(body.subarray(written, ++written))
    if (written < body.length) {
      timers.after(trickle, next)
      return
    }
    sent()
    res.end()
  }
  next()
}
