import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import t from 'tap'
import { Agent } from 'undici'
import { setup } from '../helpers/setup.js'

// Apps created after 2022 must call WeCom from a trusted IP: teams route the calls through an
// egress proxy. This one tunnels CONNECT to wherever it is asked and remembers where.
async function startProxy (t: { teardown (fn: () => unknown): void }): Promise<{ url: string, tunnels: string[] }> {
  const tunnels: string[] = []
  const proxy = createServer()
  proxy.on('connect', (request, client, head) => {
    tunnels.push(String(request.url))
    const [host, port] = String(request.url).split(':')
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    proxy.close(() => resolve())
    proxy.closeAllConnections()
  }))
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, tunnels }
}

t.test('api.proxy sends every WeCom call through the proxy', async (t) => {
  const proxy = await startProxy(t)
  const h = await setup(t, { api: { proxy: proxy.url } })
  const res = await h.login('zhangsan')
  t.equal(res.statusCode, 200)
  t.ok(proxy.tunnels.length >= 1, `${proxy.tunnels.length} tunnel(s) opened`)
  t.same(new Set(proxy.tunnels), new Set([new URL(h.sim.url).host]), 'to WeCom (the simulator) only')
  t.same(h.sim.calls, { gettoken: 1, jscode2session: 1, 'user/get': 1 })
})

t.test('api.dispatcher is used for WeCom calls and never closed by the plugin', async (t) => {
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.close())
  let dispatched = 0
  const counting = dispatcher.compose((dispatch) => (options, handler) => {
    dispatched++
    return dispatch(options, handler)
  })
  const h = await setup(t, { api: { dispatcher: counting } })
  t.equal((await h.login('zhangsan')).statusCode, 200)
  t.equal(dispatched, 3)
  await h.app.close()
  t.notOk(dispatcher.closed, 'the injected dispatcher is still open')
  t.notOk(dispatcher.destroyed)
})
