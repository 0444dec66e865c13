import { createHash } from 'node:crypto'
import t from 'tap'
import { signPage, signature } from '../../src/wecom/jssdk.js'

const example = {
  ticket: 'sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg',
  nonceStr: 'Wm3WZYTPz0wzccnW',
  timestamp: 1414587457,
  url: 'http://mp.weixin.qq.com?params=value'
}

t.test('the signature of WeCom\'s documented example', async (t) => {
  t.equal(signature(example), '0f9de62fce790f9a083d5c99e95740ceb90c27ed')
})

t.test('the # part of the URL is not signed', async (t) => {
  t.equal(signature({ ...example, url: `${example.url}#/home?x=1` }), '0f9de62fce790f9a083d5c99e95740ceb90c27ed')
})

t.test('a page signed for config and agentConfig: one timestamp in seconds, a nonce each, each with its ticket', async (t) => {
  const url = 'https://app.example.com/page?a=1#top'
  const signed = signPage(url, { jsapi: 'corp-ticket', agent: 'app-ticket' }, () => 1_700_000_000_999)
  t.equal(signed.config.timestamp, 1_700_000_000)
  t.equal(signed.agentConfig.timestamp, 1_700_000_000)
  t.match(signed.config.nonceStr, /^[0-9a-f]{16}$/)
  t.not(signed.config.nonceStr, signed.agentConfig.nonceStr)
  const expected = (ticket: string, nonce: string) => createHash('sha1')
    .update(`jsapi_ticket=${ticket}&noncestr=${nonce}&timestamp=1700000000&url=https://app.example.com/page?a=1`).digest('hex')
  t.equal(signed.config.signature, expected('corp-ticket', signed.config.nonceStr))
  t.equal(signed.agentConfig.signature, expected('app-ticket', signed.agentConfig.nonceStr))
  t.not(signPage(url, { jsapi: 'corp-ticket', agent: 'app-ticket' }).config.nonceStr, signed.config.nonceStr, 'a fresh nonce per page')
})
