# A small image with vhdprep and e2fsprogs (debugfs, e2fsck and e2undo, which
# fix, deprovision, agent inject and prepare write through), for CI pipelines:
#
#   docker build -t vhdprep .
#   docker run --rm -v "$PWD:/work" vhdprep prepare disk.qcow2 disk.vhd
#
# make docker builds it (where a container engine runs) and prepares the demo
# sample with it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The checkout's version, given by make docker (the build sees no .git).
ARG VERSION=dev
ARG COMMIT=
RUN make build VERSION="$VERSION" COMMIT="$COMMIT"

FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/bin/vhdprep /usr/local/bin/vhdprep
WORKDIR /work
ENTRYPOINT ["vhdprep"]
