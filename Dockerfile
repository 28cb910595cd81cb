# The batchpilot worker (and CLI) image. Node runs the TypeScript sources directly: no build step.
FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY common ./common
COPY activities ./activities
COPY workflows ./workflows
COPY worker ./worker
COPY client ./client
COPY emulator ./emulator
COPY planner ./planner
ENV BATCHPILOT_DATA_DIR=/data NODE_ENV=production
VOLUME ["/data"]
ENTRYPOINT ["node", "bin/batchpilot.ts"]
CMD ["worker"]
