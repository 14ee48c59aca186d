# syntax=docker/dockerfile:1
#
# One image for every role of simbatch; the command picks the role:
#   docker build -t simbatch .
#   docker run simbatch migrate                  # create/migrate the database, exit
#   docker run -p 8080:8080 simbatch api         # (the default command)
#   docker run simbatch worker
#   docker run simbatch reconciler
#   docker run simbatch admin users create --id alice --tier pro
# Configuration is the environment (README: Configuration).
#
# The roles run their TypeScript through tsx (a production dependency), so
# nothing is compiled: the build stage installs from the lockfile, generates the
# Prisma client and prunes to production dependencies; the runtime stage gets
# that tree and nothing else (no npm cache, no dev tools). tests/deploy/
# dockerfile.int.test.ts runs these steps on a clean copy of the tree.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first: the dependency layer is rebuilt only when one of them changes.
COPY package.json package-lock.json ./
COPY apps/api/package.json apps/api/
COPY apps/reconciler/package.json apps/reconciler/
COPY apps/worker/package.json apps/worker/
COPY packages/config/package.json packages/config/
COPY packages/contracts/package.json packages/contracts/
COPY packages/core/package.json packages/core/
COPY packages/db/package.json packages/db/
COPY packages/engine/package.json packages/engine/
COPY packages/errors/package.json packages/errors/
COPY packages/logger/package.json packages/logger/
COPY packages/queue/package.json packages/queue/
COPY packages/runtime/package.json packages/runtime/
COPY packages/testing/package.json packages/testing/
# No dependency install scripts: nothing needs them (Prisma runs with no engine
# binaries, see README "Prisma offline"), and skipping them keeps the build
# from downloading anything besides the packages.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# The client is generated into packages/db/src/generated (the root postinstall
# that --ignore-scripts skipped), then dev dependencies are dropped.
RUN npx prisma generate && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# CHECKPOINT_DISABLE: the Prisma CLI (migrate) does not call home.
ENV NODE_ENV=production \
    PORT=8080 \
    CHECKPOINT_DISABLE=1
WORKDIR /app
# Owned by root, readable by all: the service user cannot change its own code.
COPY --from=build /app /app
# `node` (uid 1000) comes with the base image. tsx caches compiled files in /tmp.
USER node
EXPOSE 8080
# api: GET /health; worker and reconciler: set HEALTH_FILE (docker-compose.yml does).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "scripts/healthcheck.mjs"]
ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["api"]
