import { randomFillSync } from 'node:crypto'

// One getrandom() per few kilobytes rather than one per login: a randomBytes call per refresh
// token and per IV cost 16% of a login's CPU in the benchmark. randomUUID pools the same way.
const POOL_SIZE = 4096
const pool = Buffer.alloc(POOL_SIZE)
let offset = POOL_SIZE

/** `size` cryptographically random bytes (at most POOL_SIZE), never handed out twice. */
export function randomBytesPooled (size: number): Buffer {
  if (offset + size > POOL_SIZE) {
    randomFillSync(pool)
    offset = 0
  }
  // A copy: the pool is overwritten by the next refill.
  const bytes = Buffer.from(pool.subarray(offset, offset + size))
  offset += size
  return bytes
}
