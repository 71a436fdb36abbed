# syntax=docker/dockerfile:1
# acr-pull-webhook: build with dev dependencies, run with production ones only on a distroless Node 24 image
# (no shell, no package manager, non-root). Node is PID 1 and the webhook handles SIGTERM itself: it stops
# taking new reviews and finishes the in-flight ones (the Deployment gives it 30 s).
#   docker build -t acr-pull-webhook:0.1.0 .

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency has an install script; --ignore-scripts keeps it that way.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
# package.json carries "type": "module"; files stay root-owned and read-only for the webhook's user.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
USER 65532:65532
EXPOSE 8443 9090
# The base image's entrypoint is node.
CMD ["dist/src/main.js"]
