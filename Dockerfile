# iiif-process in a container: built with cargo, run on a slim base with the binary as entrypoint.
#   docker build -t iiif-process .
#   docker run --rm -v "$PWD:/work" iiif-process -config config.example.json \
#       -instructions instructions.example.json -uri source/IMG_0084.JPG
# Config and instructions are mounted (or baked into a derived image); sources and derivatives are a mounted
# directory or object storage named in the config, with credentials from the environment (AWS_*, GOOGLE_*, AZURE_*).

# Build stage: the same commands as .ci/run's container-build check.
FROM rust:1-slim-bookworm AS build
# cmake and nasm build the bundled libjpeg-turbo (the turbojpeg crate).
RUN apt-get update && apt-get install -y --no-install-recommends cmake nasm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked

# Run stage: CA certificates for HTTPS to object storage; nothing else is needed (TLS is rustls, no OpenSSL).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/iiif-process /usr/local/bin/iiif-process
# An unprivileged user; /work is where a mounted project (config, instructions, images) is expected.
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/iiif-process"]
CMD ["--help"]
