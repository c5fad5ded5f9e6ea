# syntax=docker/dockerfile:1.7
#
# One image, four binaries: inventory, order-routing, member (the services; the
# Kubernetes manifests pick one with `command:`) and omni (launcher and CLI).
#
#   docker build -t omni:latest .
#   docker run --rm -p 50051:50051 -e DATABASE_URL=... omni:latest inventory
#   docker run --rm omni:latest inventory migrate     # run migrations and exit
#
# Needs BuildKit (the default builder) for the cache mounts: dependencies are
# compiled once and reused across builds without landing in an image layer.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# target/ lives in a cache mount, so the binaries are copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        --bin inventory --bin order-routing --bin member --bin omni \
 && mkdir -p /out \
 && cp target/release/inventory target/release/order-routing \
       target/release/member target/release/omni /out/

# glibc, libgcc and CA certificates, no shell and no package manager: little to
# attack and nothing to patch but the base. Kubernetes' preStop uses the `sleep`
# action for that reason, not an exec of /bin/sleep.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# The uid the manifests run as (runAsUser 10001); fixed so file ownership and
# PodSecurity checks do not depend on the base image's user table.
USER 10001:10001
# gRPC: inventory 50051, order-routing 50052, member 50053; metrics 9101-9103.
EXPOSE 50051 50052 50053 9101 9102 9103
CMD ["omni", "--help"]
