# syntax=docker/dockerfile:1
# sluice: one image for `sluice worker`, `sluice server` and the CLI.
#   docker build -t sluice .                                    # Node 22.23 (the default below)
#   docker build -t sluice --build-arg NODE_VERSION=22.24 .     # another 22.x minor
# A minor, not a major: the tag `22.23-bookworm-slim` moves only with 22.23's patch releases, so a
# rebuild gets security fixes and never a new minor by surprise. package.json's "engines" allows
# ^20.18.1 || >=22; the image runs 22, the newer LTS, and 22.23 was its newest minor when pinned.
ARG NODE_VERSION=22.23

# 1. Production dependencies only. --ignore-scripts: msgpackr-extract's install script only looks for
#    a prebuilt binary, which it finds at run time anyway (@msgpackr-extract/msgpackr-extract-linux-*).
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 2. Build with every dependency, then unpack exactly what `npm pack` ships (package.json, and
#    the "files" entries: bin, dist) into /package — the runtime stage takes that and nothing else.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm pack --ignore-scripts --pack-destination /tmp \
 && mkdir /package \
 && tar -xzf /tmp/sluice-*.tgz -C /package --strip-components=1

# 3. Runtime: the package, its production dependencies, tini, a non-root user.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini is PID 1: it forwards SIGTERM/SIGINT to node (which runs the worker's graceful shutdown) and
# reaps zombies, whatever runs the container (compose, `docker run`, Kubernetes).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /package ./
# Upload and download directories (files.uploadDir / files.downloadDir in the config), owned by the
# user the process runs as; docker-compose.yml mounts a volume on /var/lib/sluice.
RUN mkdir -p /var/lib/sluice/uploads /var/lib/sluice/downloads \
 && chown -R node:node /var/lib/sluice
USER node
ENTRYPOINT ["/usr/bin/tini", "--", "node", "bin/sluice.js"]
CMD ["worker"]
