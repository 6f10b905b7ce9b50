# The tributary worker and its built-in connectors, in a container image.
#
#   docker build -t tributary .
#   docker run -e TRIBUTARY_BOOTSTRAP_SERVERS=kafka:9092 \
#       -e TRIBUTARY_REST_AUTH_TOKEN=… -p 8083:8083 tributary
#
# Two stages: `build` compiles the worker and the connectors; `runtime` is
# a minimal glibc base holding the worker, the connectors (precompiled for
# this machine's CPU), a worker config read from the environment, and no
# toolchain, package manager or shell. The layout, the environment and the
# volumes are described in docs/deploy.md.
#
# Build arguments:
#   BUILD_BASE    the Rust toolchain image of the build stage
#   RUNTIME_BASE  the runtime stage's base: any glibc root filesystem
#                 (distroless/cc, debian:bookworm-slim, …)
#   ARTIFACTS     the stage or image the runtime stage copies its files
#                 from; by default the build stage. Another image works
#                 when it holds the same paths (see the `build` stage's
#                 last step): /usr/bin/tributary, the *.wasm files in
#                 /usr/lib/tributary/plugins, and the empty directories
#                 /var/cache/tributary and /var/lib/tributary.

ARG BUILD_BASE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12
ARG ARTIFACTS=build

FROM ${BUILD_BASE} AS build
WORKDIR /src
COPY . .
# The toolchain is the base image's (rust-toolchain.toml would ask rustup
# for the newest stable instead); the connectors build with the guest
# profile, as scripts/build-plugins builds them.
RUN set -eux; \
    export RUSTUP_TOOLCHAIN="$(rustup default | cut -d' ' -f1)"; \
    rustup target add wasm32-wasip2; \
    cargo build --locked --release -p tributary; \
    CARGO_TARGET_DIR=target/guests cargo build --locked --profile guest --target wasm32-wasip2 \
        -p tributary-connector-file -p tributary-connector-database -p tributary-connector-s3; \
    install -D -m 0755 target/release/tributary /out/usr/bin/tributary; \
    strip --strip-debug /out/usr/bin/tributary; \
    install -d /out/usr/lib/tributary/plugins /out/var/cache/tributary /out/var/lib/tributary; \
    install -m 0644 target/guests/wasm32-wasip2/guest/tributary_connector_file.wasm \
        target/guests/wasm32-wasip2/guest/tributary_connector_database.wasm \
        target/guests/wasm32-wasip2/guest/tributary_connector_s3.wasm \
        /out/usr/lib/tributary/plugins/

FROM scratch AS build-artifacts
COPY --from=build /out/ /

FROM ${ARTIFACTS} AS artifacts

FROM ${RUNTIME_BASE} AS runtime
COPY --from=artifacts /usr/bin/tributary /usr/bin/tributary
COPY --from=artifacts /usr/lib/tributary/plugins/ /usr/lib/tributary/plugins/
# The only places the worker writes: compiled plugins and connectors' data.
COPY --from=artifacts --chown=65532:65532 /var/cache/tributary/ /var/cache/tributary/
COPY --from=artifacts --chown=65532:65532 /var/lib/tributary/ /var/lib/tributary/
COPY deploy/worker.yaml /etc/tributary/worker.yaml

# Every key of /etc/tributary/worker.yaml but bootstrap.servers and
# rest.auth.token, which a container must be given.
ENV TRIBUTARY_LOG_FORMAT=json \
    TRIBUTARY_LISTENERS=http://:8083 \
    TRIBUTARY_REST_TLS_CERTIFICATE_FILE= \
    TRIBUTARY_REST_TLS_KEY_FILE= \
    TRIBUTARY_SECURITY_PROTOCOL= \
    TRIBUTARY_SASL_MECHANISM= \
    TRIBUTARY_SASL_USERNAME= \
    TRIBUTARY_SASL_PASSWORD= \
    TRIBUTARY_SSL_CA_LOCATION= \
    TRIBUTARY_SSL_CERTIFICATE_LOCATION= \
    TRIBUTARY_SSL_KEY_LOCATION= \
    TRIBUTARY_SSL_KEY_PASSWORD= \
    TRIBUTARY_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM= \
    TRIBUTARY_CONFIG_STORAGE_TOPIC=tributary-configs \
    TRIBUTARY_CONFIG_STORAGE_REPLICATION_FACTOR=-1 \
    TRIBUTARY_OFFSET_STORAGE_TOPIC=tributary-offsets \
    TRIBUTARY_OFFSET_STORAGE_PARTITIONS=1 \
    TRIBUTARY_OFFSET_STORAGE_REPLICATION_FACTOR=-1 \
    TRIBUTARY_STATUS_STORAGE_TOPIC=tributary-status \
    TRIBUTARY_STATUS_STORAGE_REPLICATION_FACTOR=-1 \
    TRIBUTARY_OFFSET_FLUSH_INTERVAL_MS=5000 \
    TRIBUTARY_TOPIC_CREATION_ENABLE=true \
    TRIBUTARY_TOPIC_CREATION_DEFAULT_PARTITIONS=1 \
    TRIBUTARY_TOPIC_CREATION_DEFAULT_REPLICATION_FACTOR=-1 \
    TRIBUTARY_SINK_GROUP_ID_PREFIX=connect- \
    TRIBUTARY_TASK_SHUTDOWN_GRACEFUL_TIMEOUT_MS=10000 \
    TRIBUTARY_TASK_MEMORY_MAX_MB=256 \
    TRIBUTARY_TASK_CALL_TIMEOUT_MS=10000 \
    TRIBUTARY_METRICS_LOG_INTERVAL_MS=5000 \
    TRIBUTARY_CONNECTORS_MAX=100 \
    TRIBUTARY_TASKS_MAX_TOTAL=400 \
    TRIBUTARY_FILE_ALLOWED_PATHS=/var/lib/tributary \
    TRIBUTARY_CONFIG_PROVIDERS_ENV_ALLOWLIST_PATTERN= \
    TRIBUTARY_CONNECTOR_CLIENT_CONFIG_OVERRIDE_POLICY=None \
    TRIBUTARY_CONFIG_PROVIDERS_FILE_ALLOWED_PATHS=/etc/tributary/secrets \
    TRIBUTARY_CONFIG_PROVIDERS_AWS_SECRETSMANAGER_REGION= \
    TRIBUTARY_CONFIG_PROVIDERS_AWS_SECRETSMANAGER_ENDPOINT= \
    TRIBUTARY_CONFIG_PROVIDERS_AWS_SECRETSMANAGER_REFRESH_INTERVAL_MS=300000

USER 65532:65532
WORKDIR /var/lib/tributary

# Compile every plugin into /var/cache/tributary now, so a container starts
# without compiling. Compiled code is for the CPU features of the machine
# that builds the image: on a CPU with other features the worker compiles
# the plugins at start (and keeps them where /var/cache/tributary is
# writable). The two required variables get stand-ins for this one step
# (build arguments are not kept in the image's environment); listing the
# plugins reaches no broker.
ARG TRIBUTARY_BOOTSTRAP_SERVERS=image-build.invalid:9092
ARG TRIBUTARY_REST_AUTH_TOKEN=image-build
RUN ["/usr/bin/tributary", "plugins", "-w", "/etc/tributary/worker.yaml"]

VOLUME ["/var/lib/tributary"]
EXPOSE 8083
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/bin/tributary", "health"]
ENTRYPOINT ["/usr/bin/tributary", "run", "-w", "/etc/tributary/worker.yaml"]
CMD []
