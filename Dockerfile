# syntax=docker/dockerfile:1
# Switchyard image: builds with dev dependencies, ships only dist/ and production node_modules, runs as uid 1000 on a read-only root.

# Pinned by exact version: rebuilds stay reproducible and upgrades are a reviewed one-line change.
ARG NODE_IMAGE=node:22.22.0-bookworm-slim

# --- build: full install from the lockfile, then compile TypeScript to dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
# Only src/ is needed for the image; bench/ and scripts/ (also in tsconfig.build.json) stay out of the context.
COPY src ./src
RUN npm run build \
 && chmod 0755 dist/src/cli.js

# --- deps: production dependencies only, installed fresh so no dev package leaks into the image
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=64 \
    SWITCHYARD_CONFIG=/etc/switchyard/policies \
    SWITCHYARD_DATA_DIR=/var/lib/switchyard \
    SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_PORT=8080 \
    SWITCHYARD_ADMIN_PORT=9090
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY policies ./policies
# The bin from package.json, linked onto PATH so ENTRYPOINT can name it; the data dir is the only
# path the process writes besides /tmp, so the root filesystem can be mounted read-only.
RUN ln -s /app/dist/src/cli.js /usr/local/bin/switchyard \
 && mkdir -p /etc/switchyard/policies /var/lib/switchyard \
 && chown 1000:1000 /var/lib/switchyard
# uid 1000 is the base image's `node` user; numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SWITCHYARD_ADMIN_PORT || 9090) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["switchyard"]
CMD ["serve", "--config", "/etc/switchyard/policies"]
