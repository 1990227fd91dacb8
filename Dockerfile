# Worker image. The sources are compiled to dist/ with tsc (scripts/build.mjs) in the first stage;
# bin/transfer.js runs dist/ (it falls back to the sources through tsx, a runtime dependency, only
# if dist/ were missing or older than them).
# Build:  docker build -t durable-transfer-worker .

# --- dependencies and build -------------------------------------------------
FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Install exactly what the lockfile says (its `prepare` build skips: no sources yet).
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
# Compile, then drop devDependencies (vitest, typescript, playwright...); tsx stays (a dependency).
RUN node scripts/build.mjs \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime ----------------------------------------------------------------
FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY --chown=node:node bin ./bin
COPY --chown=node:node src ./src
COPY --chown=node:node workflows ./workflows
COPY --chown=node:node activities ./activities
COPY --chown=node:node migrations ./migrations
# The transfer request table other services install (`transfer messages install`).
COPY --chown=node:node sql ./sql
# After the sources: the build stamp (the build's start, later than the sources' times) stays current.
COPY --from=deps --chown=node:node /app/dist ./dist
# The official image ships an unprivileged "node" user (uid 1000).
USER node
# Prometheus metrics (METRICS_PORT).
EXPOSE 9464
CMD ["node", "bin/transfer.js", "worker"]
