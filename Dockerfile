# syntax=docker/dockerfile:1
# The Mimir Auth Hub as a container: the package exactly as npm ships it (`npm pack`, whose
# prepack compiles src/ to dist/), installed with its production dependencies only, run as an
# unprivileged user. test/package/deploy.test.ts runs this file's CMD and ENV against the packed
# tarball, and its HEALTHCHECK against the hub it started. docs/production.md says how to use it.

# 1. Build: the full dev toolchain compiles the TypeScript and packs the tarball.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN mkdir -p /pkg && npm pack --pack-destination /pkg && mv /pkg/mimir-auth-hub-*.tgz /pkg/mimir-auth-hub.tgz

# 2. Install: the tarball into an empty app, production dependencies only (no TypeScript, no tests).
FROM node:24-bookworm-slim AS install
WORKDIR /app
COPY --from=build /pkg/mimir-auth-hub.tgz /tmp/mimir-auth-hub.tgz
RUN echo '{"name":"mimir-auth-app","private":true}' > package.json \
 && npm install --omit=dev --no-audit --no-fund /tmp/mimir-auth-hub.tgz \
 && npm cache clean --force

# 3. Run: Node, the installed package and nothing else of the build.
FROM node:24-bookworm-slim
RUN groupadd --system --gid 10001 mimir \
 && useradd --system --uid 10001 --gid mimir --home-dir /data --no-create-home --shell /usr/sbin/nologin mimir \
 && mkdir -p /data && chown mimir:mimir /data && chmod 0700 /data
COPY --from=install /app /app
ENV NODE_ENV=production \
    PATH=/app/node_modules/.bin:$PATH \
    MIMIR_AUTH_HOST=0.0.0.0 \
    MIMIR_AUTH_PORT=9042 \
    MIMIR_DATA_DIR=/data
# SQLite database and key files (the default storage); empty when the hub runs on Redis/PostgreSQL.
VOLUME ["/data"]
# Root-owned and read-only to the hub: no .env can be planted in its working directory.
WORKDIR /app
EXPOSE 9042
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# Liveness: /health touches no store (a store outage must not get the hub restarted).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.MIMIR_AUTH_PORT || 9042) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains in-flight requests for up to MIMIR_SHUTDOWN_TIMEOUT seconds (docker stop waits 10 s by default: pass --time).
STOPSIGNAL SIGTERM
CMD ["mimir-auth", "serve"]
