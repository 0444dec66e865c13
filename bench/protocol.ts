/** What the bench process and a server child (server.ts) say to each other over IPC. */
export type ToServer =
  /** Logs in members m<from> … m<from + count - 1> of the first corp. */
  | { type: 'logins', from: number, count: number }
  /** `settle`: ms idle before reading (500 when absent). */
  | { type: 'memory', settle?: number }
  /** The server's CPU time so far: what a run cost it, whatever the load generator beside it costs. */
  | { type: 'cpu' }
  /** `app.wecom.accessToken` of each corp, 64 at a time: the corps' tokens in the process's cache (scenario 8). */
  | { type: 'tokens', corpIds: string[] }

export type FromServer =
  | { type: 'ready', url: string }
  | { type: 'failed', message: string }
  | { type: 'logins', failed: number }
  | { type: 'tokens', failed: number }
  /** largeObjects: V8's large object space, where big Map and array backing stores live. */
  | { type: 'memory', usage: NodeJS.MemoryUsage, largeObjects: number, unhandledRejections: number }
  /** µs of CPU (user + system) the server process has used since it started. */
  | { type: 'cpu', micros: number }
