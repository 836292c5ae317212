# The `bridge` server in a small image: a Rust builder stage, then the binary alone on
# distroless/cc (glibc and CA certificates, no shell, non-root user).
#
#   docker build -t account-link-bridge .
#   docker run --rm -p 8080:8080 account-link-bridge        # the embedded demo upstream
#   docker run --rm -p 8080:8080 \
#     -e BRIDGE_UPSTREAM_TOKEN_URL=https://login.salesforce.com/services/oauth2/token \
#     -e BRIDGE_PROVIDER=salesforce account-link-bridge
#
# Every option is also an environment variable BRIDGE_<NAME> (see `bridge --help`).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p account-link-bridge-server --bin bridge

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/bridge /usr/local/bin/bridge
# Reachable from outside the container (the binary's own default is loopback only).
ENV BRIDGE_LISTEN=0.0.0.0:8080
EXPOSE 8080
# distroless' `nonroot` user (65532), by number so that runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["bridge"]
