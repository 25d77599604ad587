# CPU image: the server on the embedded default model.
#   docker build -t tokstream .
#   docker run --rm -p 8080:8080 -e TOKSTREAM_API_KEYS=change-me tokstream
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json tsconfig.json ./
COPY codec codec
COPY server server
COPY clients/ts clients/ts
COPY prep prep
COPY cli cli
COPY bench bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY bin bin
COPY server/demo server/demo
COPY server/rooms/demo server/rooms/demo
COPY models/default models/default
USER node
ENV TOKSTREAM_HOST=0.0.0.0 TOKSTREAM_PORT=8080 TOKSTREAM_MODELS_DIR=/app/models
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "bin/tokstream.js"]
CMD ["serve"]
