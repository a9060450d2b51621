# syntax=docker/dockerfile:1
# The kaudit image: the CLI and agent on Node 20, production dependencies only.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t kaudit:0.1.0 .
#   docker run --rm kaudit:0.1.0 --version
#
# `npm ci` in the deps stage runs on the target platform, so it installs DuckDB's native binding for
# it: @duckdb/node-bindings-linux-x64 on linux/amd64, -linux-arm64 on linux/arm64 (glibc builds, for
# this Debian base).

ARG NODE_IMAGE=node:20-bookworm-slim

# Compile TypeScript and the WebAssembly scanner once, on the build machine's platform: the output
# is the same JavaScript and .wasm for every target.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the package's prepare script builds, and the sources are not here yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json asconfig.json ./
COPY scripts ./scripts
COPY wasm ./wasm
COPY src ./src
RUN npm run build

# Production dependencies for the target platform (the DuckDB native binding among them).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    KAUDIT_CONFIG=/etc/kaudit/config/kaudit.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
RUN ln -s /app/bin/kaudit.cjs /usr/local/bin/kaudit
# The image's unprivileged user (uid 1000). The node-agent DaemonSet runs as root instead, to read
# kube-apiserver's root-only audit log (deploy/kubernetes/overlays/node-agent).
USER node
EXPOSE 5599 8443
ENTRYPOINT ["node", "/app/bin/kaudit.cjs"]
CMD ["agent"]
