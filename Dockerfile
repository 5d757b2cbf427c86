# aisbreaker-gateway image: docker build -t aisbreaker-gateway .
# Build stage: all dependencies, compile TypeScript to dist/.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and dist/ only, as the unprivileged `node` user.
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    AISBREAKER_DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# only used when AISBREAKER_SECRET is unset (one container, no volume: tokens die with it)
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
# the slim image has no curl: node asks /healthz itself
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# exec form: node is PID 1 and gets SIGTERM itself; it drains in-flight requests (SHUTDOWN_GRACE_MS)
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
