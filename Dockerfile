# The batchpilot worker (and CLI) image. Three stages: `build` compiles the TypeScript into dist/ and
# prebuilds the workflow bundle, `deps` installs the production packages only, and the final stage
# holds just those two, run by the unprivileged `node` user. test/e2e/dockerfile.test.ts runs the
# install and build steps of this file without Docker, so keep them plain RUN lines.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The lockfile lists every platform's optional native packages (swc's, for one), so `npm ci` accepts
# it on any platform and installs only this platform's.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY common ./common
COPY activities ./activities
COPY storage ./storage
COPY workflows ./workflows
COPY worker ./worker
COPY client ./client
COPY emulator ./emulator
COPY planner ./planner
COPY scripts/bundle-workflows.ts ./scripts/
# The workflow bundle is built once here: workers load it (BATCHPILOT_WORKFLOW_BUNDLE) instead of
# bundling with webpack at every start; its .traced twin beside it is what a worker with OTEL_* set
# loads.
RUN npm run build && node dist/scripts/bundle-workflows.js dist/workflow-bundle.js

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The data volume belongs to the user the worker runs as.
RUN install -d -o node -g node /data
ENV NODE_ENV=production BATCHPILOT_DATA_DIR=/data BATCHPILOT_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
USER node
VOLUME ["/data"]
ENTRYPOINT ["node", "dist/bin/batchpilot.js"]
CMD ["worker"]
