# syntax=docker/dockerfile:1
# Build: docker build -t erasure-gateway .
# Run:   docker run --read-only -p 8080:8080 -p 9090:9090 \
#          -v eg-audit:/var/lib/erasure-gateway erasure-gateway
# The image writes only to /var/lib/erasure-gateway (the trail, under audit/),
# so the root filesystem can be read-only. Kubernetes: deploy/kubernetes/.
#
# Base images are pinned by exact version tag, NOT by digest: no registry
# was reachable when this was written, so no digest could be verified, and a
# guessed one would break the build. To pin, resolve the digests and append
# them (FROM image:tag@sha256:…), e.g. with
#   docker buildx imagetools inspect rust:1.95.0-slim-bookworm
#   crane digest gcr.io/distroless/cc-debian12:nonroot
# and let Renovate/Dependabot keep them current. distroless publishes no
# version tags (only latest/nonroot/debug…): `nonroot` is its most exact tag.
# Both stages are Debian 12 (bookworm), so the binary's glibc matches.

# ---- build ------------------------------------------------------------------
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# jemalloc (the default `jemalloc` feature) is built from C with make; the
# slim image has the compiler but not make.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

# 1. Dependencies, in layers of their own: rebuilt only when Cargo.toml or
#    Cargo.lock change, not on every source edit.
#    Cargo reads every target the manifest declares before it builds anything,
#    and an explicitly declared target whose file is missing is a hard error
#    ("can't find `trail_commit` bench"), even for a plain `cargo build`. So
#    the placeholder tree has a stub for each declared target: src/main.rs
#    ([[bin]]), src/lib.rs and benches/{trail_commit,decide,seam_parse,console}.rs
#    ([[bench]]). examples/ and tests/ are only auto-discovered; absent,
#    they are simply empty.
#    tests/it/deploy.rs fails if Cargo.toml declares a target not stubbed here.
COPY Cargo.toml Cargo.lock ./
# Build settings (jemalloc's page decay), read when jemalloc is built.
COPY .cargo ./.cargo
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && : > src/lib.rs \
    && echo 'fn main() {}' > benches/trail_commit.rs \
    && echo 'fn main() {}' > benches/decide.rs \
    && echo 'fn main() {}' > benches/seam_parse.rs \
    && echo 'fn main() {}' > benches/console.rs \
    && cargo fetch --locked
RUN cargo build --locked --offline --release

# 2. The crate itself. The real sources replace the stubs (the bench stub
#    stays: the manifest still names it; `cargo build` does not build benches).
#    Touch them so cargo sees them as newer than the placeholder build, whose
#    dep-info lists only these two files.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --locked --offline --release \
    && install -D -m 0755 target/release/erasure-gateway /out/erasure-gateway \
    && install -d -m 0700 /out/state/audit

# ---- runtime ----------------------------------------------------------------
# distroless: no shell, no package manager; glibc, libgcc and CA certificates.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="erasure-gateway" \
      org.opencontainers.image.description="A reverse proxy that decides vendor data-erasure calls with Cedar policies and records every decision." \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/erasure-gateway /usr/local/bin/erasure-gateway
COPY deploy/container.toml /etc/erasure-gateway/gateway.toml
# Exactly the files the gateway loads (not policies/README.md or tests/),
# owned by root and read-only for the gateway.
COPY policies/schema.cedarschema policies/entities.json policies/*.cedar \
     /etc/erasure-gateway/policies/
# The state directory (created by this COPY, so --chown applies to it too)
# belongs to the gateway's uid: a fresh named volume, initialised from it, is
# writable. The trail goes to audit/ beneath it: 0700, like the gateway's
# own 0600 trail files. The gateway keeps an existing directory's mode, so
# with [audit] group_read = true mount a volume whose directory is 0750.
COPY --from=build --chown=65532:65532 /out/state /var/lib/erasure-gateway
ENV ERASURE_GATEWAY_CONFIG=/etc/erasure-gateway/gateway.toml
VOLUME ["/var/lib/erasure-gateway"]
WORKDIR /var/lib/erasure-gateway
# 65532 is distroless's `nonroot`; numeric, so runAsNonRoot can verify it.
USER 65532:65532
# 8080: the proxy; 9090: admin (/healthz, /readyz, /metrics).
EXPOSE 8080 9090
# SIGTERM: stop accepting, drain in-flight requests for [proxy] shutdown_grace
# (30s by default), exit 0. Give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
# No shell or curl in the image: the binary probes its own admin /healthz
# (address from the same config).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/erasure-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/erasure-gateway"]
CMD ["serve"]
