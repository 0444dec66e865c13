import { randomFillSync } from 'node:crypto'

// One getrandom() per few kilobytes rather than one per login: a randomBytes call per refresh
// token and per IV cost 16% of a login's CPU in the benchmark. randomUUID pools the same way.
const POOL_SIZE = 4096
const pool = Buffer.alloc(POOL_SIZE)
let offset = POOL_SIZE

/** Where the next `size` bytes of the pool start, refilled first when they would run past its end. */
function take (size: number): number {
  if (offset + size > POOL_SIZE) {
    randomFillSync(pool)
    offset = 0
  }
  const start = offset
  offset += size
  return start
}

/** `size` cryptographically random bytes (at most POOL_SIZE), never handed out twice. */
export function randomBytesPooled (size: number): Buffer {
  const start = take(size)
  // A copy: the pool is overwritten by the next refill.
  return Buffer.from(pool.subarray(start, start + size))
}

/** `size` cryptographically random bytes (at most POOL_SIZE) as 2 × `size` lower-case hex digits. */
export function randomHex (size: number): string {
  const start = take(size)
  return pool.toString('hex', start, start + size)
}
