import { buildExampleServer, connectSimulator, instructions } from './app.js'

const { app, sim } = await buildExampleServer(process.env)
const port = Number(process.env.PORT ?? 3000)
const address = await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' })
if (sim !== undefined) {
  await connectSimulator(sim, address)
  console.log(instructions(address))
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
