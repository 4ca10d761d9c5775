# tokenscope: the image runs the JavaScript that `npm run build` compiles from the TypeScript
# sources, so no process loads Node's type-stripping transformer (~22 MB RSS each; README,
# Performance, "Fourth round").
#   docker build -t tokenscope:0.1.0 .
# Runs as a numeric non-root user with a read-only root filesystem: nothing is written to the
# image at run time. Only the embedded store (no --redis-url) writes, to $TOKENSCOPE_DATA_DIR.
ARG NODE_IMAGE=node:24-slim

# Compiles src/ and bin/ to dist/ (tsconfig.build.json): the dev dependencies live in this stage only.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
RUN npm run build

# Production dependencies only, without install scripts, in a stage of their own so the final
# image has no npm cache and no build leftovers.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="tokenscope" \
  org.opencontainers.image.description="Envoy/Istio external authorization on scoped, hashed API tokens" \
  org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
  TOKENSCOPE_DATA_DIR=/var/lib/tokenscope
# A 32 MB young generation rather than V8's 128 MB on a large node: ~96 MB less per process for
# ~1% fewer checks/s (README, Performance, "Memory"). Set NODE_OPTIONS in the pod to change it.
# No --max-old-space-size: under a memory limit Node sizes the old generation from it (the chart's
# 384Mi gives ~256 MB), which the figures favour over a fixed cap (README, "Fourth round").
ENV NODE_OPTIONS=--max-semi-space-size=16
WORKDIR /app
# Root owns the code (the app cannot change it); uid 10001 owns only the embedded store's folder
# (mount an emptyDir or a volume there when the root filesystem is read-only).
RUN mkdir -p /var/lib/tokenscope && chown 10001:10001 /var/lib/tokenscope
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
# The compiled bin/ and src/ where the sources sit in the repository: src/config.ts finds the
# example scopes (the embedded default) beside src/.
COPY --from=build /app/dist/bin ./bin
COPY --from=build /app/dist/src ./src
COPY deploy/examples/scopes ./deploy/examples/scopes
USER 10001:10001
EXPOSE 9001 9090 9443
# For `docker run`; Kubernetes uses the Deployment's probes instead.
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form, no shell: node is PID 1 and receives SIGTERM itself; `serve` then turns not-ready,
# finishes in-flight checks (--shutdown-grace) and exits.
ENTRYPOINT ["node", "bin/tokenscope.js"]
CMD ["serve"]
