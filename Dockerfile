# eventfold's container image: one static binary on distroless, run as a
# non-root user. See deploy/README.md.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t eventfold .
#   docker run --rm -p 8080:8080 -e EVENTFOLD_BROKERS=kafka:9092 eventfold
#
# With no EVENTFOLD_BROKERS the embedded broker starts inside the container,
# on its loopback only: fine for a demo over HTTP, unreachable from outside.

# The Go minor version follows the go directive of go.mod.
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: this layer stays cached until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0 gives a static binary, which the distroless static image
# needs (it has no libc). This is the build command of the README.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/eventfold . \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/eventfold /eventfold
# The volume's mount point must exist and belong to the runtime user, or a
# fresh named volume would be root-owned and unwritable.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
# distroless has no curl or wget: the binary probes its own /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/eventfold", "healthcheck"]
ENTRYPOINT ["/eventfold"]
CMD ["serve", "--data-dir", "/data"]
