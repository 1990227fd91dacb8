# Worker image. The worker runs TypeScript directly through tsx (a runtime
# dependency), so there is no compile step: we ship the sources as-is.
# Build:  docker build -t durable-transfer-worker .

# --- dependencies -----------------------------------------------------------
FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Install exactly what the lockfile says, then drop devDependencies
# (vitest, typescript, playwright...); tsx stays because it is a dependency.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime ----------------------------------------------------------------
FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json tsconfig.json ./
COPY --chown=node:node bin ./bin
COPY --chown=node:node src ./src
COPY --chown=node:node workflows ./workflows
COPY --chown=node:node activities ./activities
COPY --chown=node:node migrations ./migrations
# The transfer request table other services install (`transfer messages install`).
COPY --chown=node:node sql ./sql
# The official image ships an unprivileged "node" user (uid 1000).
USER node
# Prometheus metrics (METRICS_PORT).
EXPOSE 9464
CMD ["node", "bin/transfer.js", "worker"]
