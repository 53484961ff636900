# syntax=docker/dockerfile:1
# Production image of the Market Runtime GraphQL API (README "Deployment").
#
#   docker build -t market-runtime-graphql .
#
# Stage 1 installs every dependency, compiles better-sqlite3, generates the Prisma clients and
# transpiles src/ to dist/, then prunes the dev dependencies. Stage 2 copies only node_modules
# (production dependencies), dist/, the SQL migrations and the bundled catalogue, and runs `node dist/index.js` as the
# unprivileged `node` user: no tsx, no TypeScript, no compiler, no npm in the process chain.

ARG NODE_IMAGE=node:20.20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 is compiled from source (its prebuilt binary comes from GitHub, which the project
# never relies on); node-gyp uses the image's own Node headers instead of downloading them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app

# Dependencies first, so that a change in src/ reuses this layer.
COPY package.json package-lock.json .npmrc .prebuild-installrc prisma.config.ts ./
COPY scripts/prisma-schemas.mjs scripts/
COPY prisma/schema.prisma prisma/
# --ignore-scripts, then the two install steps the project needs, by name: the same result with the
# npm 10 bundled in the image (which ignores package.json "allowScripts") as with npm 11. Prisma's
# own install scripts (engine downloads) never run; `prisma generate` needs no engine binary here.
RUN npm ci --ignore-scripts \
 && npm rebuild better-sqlite3 \
 && npm run prisma:generate

COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
# --omit=optional as well: the prisma CLI (51 MB), typescript (24 MB) and effect (39 MB) are
# optional peers of @prisma/client, marked devOptional in the lock file, which --omit=dev alone
# keeps. No production dependency needs an optional one (better-sqlite3, pg and the Prisma runtime
# are required ones; pg-cloudflare is for Cloudflare Workers); tsx loses its esbuild binary, and
# the image never runs tsx. node_modules: 305 MB with --omit=dev, 174 MB with both.
RUN npm run build \
 && npm prune --omit=dev --omit=optional --ignore-scripts

FROM ${NODE_IMAGE} AS runtime
# No demo users, apps or payments in a database the image starts on (`docker run` alone included):
# DEMO_DATA=true turns them on.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    DEMO_DATA=false
WORKDIR /app
# Owned by root and read-only for the server; only data/ (the SQLite default, unused on
# PostgreSQL) is writable by the `node` user (uid 1000) of the base image.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules/ ./node_modules/
COPY --from=build /app/dist/ ./dist/
COPY prisma/migrations/ ./prisma/migrations/
# The catalogue market.olares reads when MARKET_SOURCE_URL is not set (README "The bundled catalogue file").
COPY catalogue/bundled.json ./catalogue/bundled.json
RUN mkdir -p data && chown node:node data
USER node
EXPOSE 4000
# PID 1 is node itself (exec form, no shell, no npm): SIGTERM from `docker stop` or the kubelet
# reaches the server, whose handler drains and stops it (README "Starting and stopping"). A PID 1
# ignores signals it has no handler for, but the server handles SIGTERM and SIGINT from its first
# moment (src/index.ts installs the handlers before it loads the rest), and it starts no child
# processes, so no init (tini, `docker run --init`) is needed.
# At start the server applies pending migrations itself (under a PostgreSQL advisory lock, so
# replicas starting together migrate once); `node dist/db/migrate-cli.js` does only that step
# (deploy/k8s/migrate-job.yaml runs it as a Job, for separate database roles).
CMD ["node", "dist/index.js"]
