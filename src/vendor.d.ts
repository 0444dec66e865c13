// @fastify/rate-limit ships no types for its in-process store: src/rate-limit.ts types what it uses.
declare module '@fastify/rate-limit/store/LocalStore.js' {
  const LocalStore: unknown
  export default LocalStore
}
