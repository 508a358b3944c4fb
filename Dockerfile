# iiif-process in a container: built with cargo, run on a slim base with the binary as entrypoint. Base images are
# named in full (registry included), so podman builds it as docker does.
#   docker build -t iiif-process .        (or: podman build -t iiif-process .)
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" iiif-process -config config.example.json \
#       -instructions instructions.example.json -uri source/IMG_0084.JPG
# Config and instructions are mounted (or baked into a derived image); sources and derivatives are a mounted
# directory or object storage named in the config, with credentials from the environment (AWS_*, GOOGLE_*, AZURE_*).
# With a mounted directory, --user makes the container write as the directory's owner (the image's own user
# cannot write into a directory it does not own).
#
# The AWS Lambda function (`iiif-process-aws lambda`) is the `lambda` target:
#   docker build --target lambda -t iiif-process-lambda .

# Build stage: the same commands as .ci/run's container-build check.
FROM docker.io/library/rust:1-slim-bookworm AS build
# cmake and nasm build the bundled libjpeg-turbo (the turbojpeg crate).
RUN apt-get update && apt-get install -y --no-install-recommends cmake nasm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The workspace's other member: cargo reads every member's manifest, even to build the core alone.
COPY crates ./crates
RUN cargo build --release --locked

# The AWS half, built only for the lambda target.
FROM build AS build-aws
RUN cargo build --release --locked -p iiif-process-aws

# The Lambda function: AWS's base image for custom runtimes (Amazon Linux 2023, glibc 2.34; .ci/run checks that the
# binary asks for no newer glibc), with the binary as its entrypoint, speaking the Lambda Runtime API itself.
FROM public.ecr.aws/lambda/provided:al2023 AS lambda
COPY --from=build-aws /src/target/release/iiif-process-aws /usr/local/bin/iiif-process-aws
COPY --from=build /src/target/release/iiif-process /usr/local/bin/iiif-process
ENTRYPOINT ["/usr/local/bin/iiif-process-aws", "lambda"]

# Run stage (the default target): CA certificates for HTTPS to object storage; nothing else is needed (TLS is
# rustls, no OpenSSL).
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/iiif-process /usr/local/bin/iiif-process
# An unprivileged user; /work is where a mounted project (config, instructions, images) is expected.
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/iiif-process"]
CMD ["--help"]
