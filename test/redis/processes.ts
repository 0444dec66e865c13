import t from 'tap'
import { oneGettokenPerCorp, WORKERS } from '../helpers/processes.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test(`${WORKERS} processes on one Redis, logging in together on a cold cache: one gettoken per corp`, (t) => oneGettokenPerCorp(t, redis.url))
}
