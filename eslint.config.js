import neostandard from 'neostandard'

// The fastify org's style (neostandard), with its TypeScript rules.
export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'examples/miniprogram/**'] })
]
