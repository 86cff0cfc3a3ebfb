# Production image on Node.js 24 LTS. Point DATABASE_URL at a PostgreSQL server; without it
# the server starts the embedded PostgreSQL in TANSU_DATA_DIR, which suits trials only.
FROM node:24-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    TANSU_DATA_DIR=/var/lib/tansu

COPY package.json package-lock.json ./
COPY sdk/ts/package.json sdk/ts/package.json
RUN npm ci --omit=dev --no-audit --no-fund

COPY proto proto
COPY third_party third_party
COPY prisma prisma
COPY scripts/require-node.ts scripts/require-node.ts
COPY sdk/ts/src sdk/ts/src
COPY services services
COPY dashboard dashboard

RUN mkdir -p /var/lib/tansu && chown node:node /var/lib/tansu
USER node
EXPOSE 8080
CMD ["node", "--no-node-snapshot", "services/server/main.ts"]
