# One image for the API, the worker and the CLI; docker-compose.yml picks the command per service:
#   node apps/api/dist/main.js   (the default)
#   node apps/worker/dist/main.js
#   node apps/cli/dist/main.js <command>
# sharp, onnxruntime-node (CPU; allowScripts in package.json denies its CUDA download) and LanceDB install prebuilt
# linux binaries, so no compiler is needed. apps/worker/test/deploy.test.ts checks the paths and settings below.

# Only the package manifests, so `npm ci` below is cached until a dependency changes.
FROM node:20.20.2-bookworm-slim AS manifests
WORKDIR /src
COPY . .
RUN mkdir /out \
 && cp package.json package-lock.json .npmrc /out/ \
 && find apps packages -mindepth 2 -maxdepth 2 -name package.json -exec cp --parents {} /out/ \;

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1 NPM_CONFIG_UPDATE_NOTIFIER=false
# The npm the lockfile was written with (package.json's packageManager).
RUN npm install --global npm@11.19.1 --no-audit --no-fund
COPY --from=manifests /out/ ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# Production dependencies and built files only: drop dev dependencies (every workspace's), sources, tests, the
# model training scripts and the onnxruntime binaries for other operating systems.
FROM build AS prune
RUN npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 \
 && find apps packages -mindepth 2 -maxdepth 2 \
      \( -name src -o -name test -o -name scripts -o -name 'tsconfig*.json' -o -name '*.md' \) -exec rm -rf {} + \
 && find apps packages -path '*/node_modules' -prune -o -path '*/dist/*' \
      \( -name '*.test.*' -o -name '.tsbuildinfo' \) -exec rm -f {} + \
 && rm -rf .turbo node_modules/.cache bench models/training models/fixtures .ci \
      eslint.config.js vitest.config.ts turbo.json tsconfig.json tsconfig.base.json \
      .prettierrc.json .prettierignore .gitignore .dockerignore .env.example docker-compose.yml Dockerfile

FROM node:20.20.2-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data \
    MODELS_DIR=/app/models
WORKDIR /app
# Owned by root, so the app cannot change its own code or models.
COPY --from=prune /app ./
# Mount points for the data and models volumes; a new named volume takes the ownership of its mount point.
RUN mkdir -p /data /models && chown node:node /data
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "apps/api/dist/main.js"]
