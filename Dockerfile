# Segments: build with the full toolchain (roaring compiles a native addon), run on a slim image.
# Node 22 LTS: Node 20 is past its end of life. The code also runs on Node 20 (development, CI).
# Both stages use the same Node, so the addon's ABI matches. Pinned by digest for reproducible
# builds (see README, "Production image", for where this one comes from and how to move it).
ARG NODE_IMAGE=node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c

FROM ${NODE_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE}
# GRPC_HOST=0.0.0.0 needs an API token: pass ADMIN_TOKEN or ADMIN_TOKEN_FILE (e.g. a mounted
# secret), or a DATABASE_URL that already holds tokens; otherwise the service refuses to start.
# TLS: mount PEM files and set TLS_CERT_FILE / TLS_KEY_FILE (/ TLS_CA_FILE for mTLS); send SIGHUP
# (docker kill -s HUP) to reload them.
ENV NODE_ENV=production \
    GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    HTTP_PORT=9464 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The CLI inside the image: `docker exec <container> segments …`.
RUN ln -s /app/dist/cli/main.js /usr/local/bin/segments && chmod +x /app/dist/cli/main.js \
    && mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 50051 9464
# Liveness from /healthz on HTTP_PORT (plain HTTP; with TLS on the HTTP port, override it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["node", "dist/cli/healthcheck.js"]
# SIGTERM drains gRPC (SHUTDOWN_GRACE_MS) and closes the store before exiting.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
