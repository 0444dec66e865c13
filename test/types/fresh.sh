#!/usr/bin/env bash
# The consumer type check of `npm run test:types`, against what a user's `npm install` resolves
# today rather than what the lockfile pins: the package as `npm pack` ships it, installed with
# Fastify into an empty directory with a fresh resolution of every range, then `tsc --strict`
# with skipLibCheck false on the same consumer files. A dependency's new minor release whose
# types break a user's build (ioredis 6.1.0 imports the untyped `redis-errors`) fails here while
# the repository's own checks, on the lockfile, still pass. Needs `npm run build` first and the
# npm registry; takes about a minute (the install and one tsc).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT

# --ignore-scripts: dist/ is already built, `prepare` need not build it again.
tarball=$(npm pack --ignore-scripts --silent --pack-destination "$app" | tail -n 1)
range () { node -p "const p = require('./package.json'); ({ ...p.dependencies, ...p.devDependencies })['$1']"; }
cp test/types/tsconfig.json test/types/consumer.ts test/types/consumer-cjs.cts "$app/"

cd "$app"
echo '{ "name": "fresh-consumer", "private": true, "type": "module" }' > package.json
# The consumer also imports @fastify/jwt, as an app using it would install it.
npm install --no-package-lock --no-audit --no-fund --loglevel=error \
  "./$tarball" "fastify@$(cd "$root" && range fastify)" "@fastify/jwt@$(cd "$root" && range @fastify/jwt)" \
  "typescript@$(cd "$root" && range typescript)" "@types/node@$(cd "$root" && range @types/node)"
echo "resolved: $(node -p "['ioredis', 'fastify', 'zod', '@fastify/rate-limit'].map((name) => name + '@' + require('./node_modules/' + name + '/package.json').version).join(' ')")"
npx --no-install tsc -p tsconfig.json
echo 'fresh consumer type check: ok'
