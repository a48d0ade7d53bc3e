# modelgw worker image (also carries modelgw-mockllm and modelgw-cli).
#
#   docker build -t modelgw .
#   docker run --rm modelgw --help
#
# Two stages on the same Debian release: the build stage has the compiler and
# the -dev packages (the ones tools/install-deps names), the runtime stage only
# the shared libraries they link against. The worker runs as an unprivileged
# user; its configuration is /etc/modelgw/docker.conf unless a --config
# argument or a mounted file says otherwise. Secrets (API keys, the Redis
# password) come from environment variables at run time, never from the image.
#
# docker-compose.yml builds this image once and runs it as `worker` and, with
# another entrypoint, as `mockllm`. tests/integration/test_deploy_static.py
# checks this file statically (every COPY source exists, the exposed and
# health-checked port is the admin port of config/docker.conf).

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build ------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      librdkafka-dev libavro-dev libhiredis-dev libconfig-dev libcmocka-dev \
      libcurl4-openssl-dev libuv1-dev libjansson-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the build reads: CMakeLists.txt configures the schema embedding
# (tools/cmake), every module (src/), the schemas, and one helper program
# named in CMakeLists.txt (tests/integration/kafka_smoke.c).
COPY CMakeLists.txt ./
COPY tools/cmake/ tools/cmake/
COPY schemas/ schemas/
COPY src/ src/
COPY tests/integration/kafka_smoke.c tests/integration/kafka_smoke.c

RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && ninja -C build modelgw modelgw-mockllm modelgw-cli \
 && strip --strip-debug build/modelgw build/modelgw-mockllm build/modelgw-cli

# ---- runtime ----------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime

# The runtime halves of the -dev packages above, plus curl for HEALTHCHECK
# and CA certificates for https:// provider endpoints.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libavro23 libhiredis0.14 libconfig9 libcurl4 libuv1 \
      libjansson4 libmicrohttpd12 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 modelgw \
 && useradd --system --uid 10001 --gid modelgw --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin modelgw

COPY --from=build /src/build/modelgw /src/build/modelgw-mockllm /src/build/modelgw-cli \
     /usr/local/bin/
COPY config/docker.conf config/modelgw.conf /etc/modelgw/

# The admin endpoint (/metrics, /health, /ready): admin.port in
# config/docker.conf. Change both together (or pass --set admin.port=N and
# -e MODELGW_ADMIN_PORT=N).
ENV MODELGW_ADMIN_PORT=9100
EXPOSE 9100

USER modelgw:modelgw
WORKDIR /tmp

# /health answers 503 when Redis is unreachable or every deployment's breaker
# is open; curl -f turns that into an unhealthy container.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${MODELGW_ADMIN_PORT}/health" || exit 1

# SIGTERM starts the graceful drain (see docs/operations.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["modelgw"]
CMD ["--config", "/etc/modelgw/docker.conf"]
