# syntax=docker/dockerfile:1
# Build with dev dependencies, run with production ones only, on a distroless Node 20 image: no shell, no
# package manager, non-root. The webhook drains in-flight reviews on SIGTERM (Node is PID 1 here and handles it).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
USER 65532:65532
EXPOSE 8443 9090
# The base image's entrypoint is node.
CMD ["dist/src/main.js"]
