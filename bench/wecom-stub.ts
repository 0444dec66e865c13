import { Dispatcher } from 'undici'

const SESSION_KEY = Buffer.alloc(16, 7).toString('base64')
const HEADERS = [Buffer.from('content-type'), Buffer.from('application/json')]

function answer (path: string): object {
  const url = new URL(path, 'http://wecom.invalid')
  switch (url.pathname) {
    case '/cgi-bin/gettoken':
      return { errcode: 0, errmsg: 'ok', access_token: 'stub-access-token', expires_in: 7200 }
    case '/cgi-bin/miniprogram/jscode2session': {
      // A stub code is `<corpid>:<userid>`: there is nothing to remember between calls.
      const [corpid, userid] = url.searchParams.get('js_code')!.split(':')
      return { errcode: 0, errmsg: 'ok', corpid, userid, session_key: SESSION_KEY }
    }
    case '/cgi-bin/user/get': {
      const userid = url.searchParams.get('userid')!
      return { errcode: 0, errmsg: 'ok', userid, name: userid, department: [1], position: 'engineer', status: 1 }
    }
    default:
      return { errcode: 40066, errmsg: 'invalid url' }
  }
}

/**
 * WeCom answered in-process, for the memory scenario only: 200,000 logins through the
 * simulator's HTTP round trips take minutes on 2 cores, and what is measured there is what the
 * plugin keeps per login, which does not depend on how WeCom is reached. Passed to the plugin as
 * `api.dispatcher`, so the plugin's own code (client, token cache, sessions, store) all runs.
 */
export class WecomStub extends Dispatcher {
  override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const body = Buffer.from(JSON.stringify(answer(options.path)))
    // On a later turn of the event loop, as a socket would: answering in microtasks would starve
    // timers and immediates for the whole run and hold on to what they would free.
    setImmediate(() => {
      handler.onConnect?.(() => {})
      handler.onHeaders?.(200, HEADERS, () => {}, 'OK')
      handler.onData?.(body)
      handler.onComplete?.([])
    })
    return true
  }

  override async close (): Promise<void> {}
  override async destroy (): Promise<void> {}
}

export const stubCode = (corpId: string, userid: string) => `${corpId}:${userid}`
