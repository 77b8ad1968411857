# Vigil images: one Dockerfile, two targets (docs/deploy.md, "Containers").
#
#   docker build --target controller -t vigil-controller .   (also the default: the last stage)
#   docker build --target agent      -t vigil-agent .
#
# The build stage has the C toolchain: `npm ci` compiles the agent's native addon (node-gyp) and
# runs the build (package.json "prepare"). The run stages have no compiler: they install the
# production dependencies only (prebuilt binaries, no install scripts) and take dist/ and the built
# addon from the build stage. test/deploy/dockerfile.test.ts performs the run stage's steps with no
# compiler on PATH and checks that the programs and the addon load.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY .ci ./.ci
COPY core ./core
COPY proto ./proto
COPY pki ./pki
COPY agent ./agent
COPY controller ./controller
COPY test ./test
# "prepare" runs `npm run build`: TypeScript into dist/, the addon into agent/native/build/.
RUN npm ci --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own "prepare" (the build) must not run here; the production
# dependencies with native code (lmdb, msgpackr-extract) load their prebuilt binaries.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY --from=build /src/agent/native/build/Release/vigil_native.node ./agent/native/build/Release/vigil_native.node
# The node image's unprivileged user, by number so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000

FROM runtime AS agent
# State (key, certificate, queue): mount a volume here. Reading a host's files needs more than
# this user: see deploy/k8s/agent-daemonset.yaml.
ENV VIGIL_AGENT_STATE_DIR=/var/lib/vigil-agent
EXPOSE 9465
ENTRYPOINT ["node", "/app/dist/agent/main.js"]
CMD ["run"]

FROM runtime AS controller
# The controller home (`vigilctl init`: CA, server key and certificate, controller.json).
ENV VIGIL_HOME=/var/lib/vigil
# 8443: agents and vigilctl (mutual TLS); 8444: enrolment; 9464: metrics and health (plain HTTP).
EXPOSE 8443 8444 9464
ENTRYPOINT ["node", "/app/dist/controller/main.js"]
