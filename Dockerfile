# Segments: build with the full toolchain (roaring compiles a native addon), run on a slim image.
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    DATA_DIR=/data
# GRPC_HOST=0.0.0.0 needs an API token: pass ADMIN_TOKEN or ADMIN_TOKEN_FILE (e.g. a mounted
# secret), or a DATABASE_URL that already holds tokens; otherwise the service refuses to start.
# TLS: mount PEM files and set TLS_CERT_FILE / TLS_KEY_FILE (/ TLS_CA_FILE for mTLS); send SIGHUP
# (docker kill -s HUP) to reload them.
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 50051 9464
# SIGTERM drains gRPC (SHUTDOWN_GRACE_MS) and closes the store before exiting.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
