import { SECURITY_SCHEME, logoutBody } from './schemas.js'

// The plugin's routes as @fastify/swagger documents them, set per route (`config.swaggerTransform`)
// so that no transform of the host's (fastify-type-provider-zod's `jsonSchemaTransform`, say) is
// applied to schemas it was not written for: the routes carry plain JSON Schema already.

interface Schema { [key: string]: unknown, body?: unknown, response?: Record<string, Record<string, unknown>> }
interface Server { url: string, variables?: Record<string, { default?: string }> }
interface Document {
  openapi?: string
  servers?: Server[]
  paths?: Record<string, Record<string, unknown>>
  components?: { securitySchemes?: Record<string, unknown> }
  securityDefinitions?: Record<string, unknown>
}

/** @fastify/swagger's route-level transform: the route as it is, and the bearer scheme logout names. */
export function swaggerTransform ({ schema, url, openapiObject, swaggerObject }: {
  schema: Schema
  url: string
  openapiObject?: Document
  swaggerObject?: Document
}): { schema: Schema, url: string } {
  if (openapiObject !== undefined) {
    openapiObject.components ??= {}
    openapiObject.components.securitySchemes ??= {}
    openapiObject.components.securitySchemes[SECURITY_SCHEME] ??= {
      type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token of fastify-wecom-auth'
    }
    // @fastify/swagger marks every request body required (Fastify wants one when there is a
    // schema); logout's is optional, so its operation is written here and the route hidden.
    if (schema.body === logoutBody && schema.hide !== true) {
      openapiObject.paths ??= {}
      const path = documentedPath(url, openapiObject.servers)
      openapiObject.paths[path] = { ...openapiObject.paths[path], post: optionalBodyOperation(schema) }
      return { schema: { ...schema, hide: true }, url }
    }
  } else if (swaggerObject !== undefined) {
    swaggerObject.securityDefinitions ??= {}
    swaggerObject.securityDefinitions[SECURITY_SCHEME] ??= { type: 'apiKey', in: 'header', name: 'Authorization' }
  }
  return { schema, url }
}

/**
 * The path @fastify/swagger gives a route it documents: the base path of each of the document's
 * servers (its variables at their defaults) stripped from the route's URL, as its `stripBasePath`
 * does by default. A route's transform is not told that option: a host that turns it off and
 * still names a base path in its servers would see logout's path stripped alone.
 */
function documentedPath (url: string, servers: Server[] = []): string {
  return servers.reduce((path, { url: server, variables }) => {
    const resolved = server.replace(/\{([^{}]+)\}/g, (whole, name: string) => variables?.[name]?.default ?? whole)
    const base = resolved.startsWith('/') ? resolved : new URL(resolved).pathname
    return base !== '/' && path.startsWith(base) ? path.replace(base, '') : path
  }, url)
}

/** An OpenAPI 3 operation from a route schema whose JSON Schema needs no conversion. */
function optionalBodyOperation ({ body, response = {}, summary, description, tags, security }: Schema): Record<string, unknown> {
  const responses: Record<string, unknown> = {}
  for (const [status, { description: said, ...bodySchema }] of Object.entries(response)) {
    responses[status] = bodySchema.type === 'null'
      ? { description: said }
      : { description: said, content: { 'application/json': { schema: bodySchema } } }
  }
  return {
    tags,
    summary,
    description,
    security,
    requestBody: { required: false, content: { 'application/json': { schema: body } } },
    responses
  }
}
