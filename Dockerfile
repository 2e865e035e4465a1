# syntax=docker/dockerfile:1
# Build: docker build -t erasure-gateway .
# Run:   docker run -p 8080:8080 -p 9090:9090 -v eg-audit:/var/lib/erasure-gateway erasure-gateway

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo fetch --locked \
    && cargo build --locked --release \
    && rm -rf src
COPY src ./src
# Touch so cargo sees the real sources as newer than the placeholder build.
RUN touch src/main.rs src/lib.rs && cargo build --locked --release \
    && install -D -m 0755 target/release/erasure-gateway /out/erasure-gateway

# distroless: no shell, no package manager; glibc and CA certificates only.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/erasure-gateway /usr/local/bin/erasure-gateway
COPY deploy/container.toml /etc/erasure-gateway/gateway.toml
COPY policies /etc/erasure-gateway/policies
ENV ERASURE_GATEWAY_CONFIG=/etc/erasure-gateway/gateway.toml
# The decision trail is the only thing written: keep it on a volume so the
# root filesystem can be read-only.
VOLUME ["/var/lib/erasure-gateway"]
WORKDIR /var/lib/erasure-gateway
# 65532 is distroless's `nonroot`.
USER 65532:65532
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/erasure-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/erasure-gateway"]
CMD ["serve"]
