# fastserve in a container: a static binary on a distroless base, run as a
# user that is not root.
#
#   docker build -t fastserve .
#   docker run --rm -p 8443:8443 fastserve        # the built-in page, self-signed
#   docker run --rm -p 443:8443 -v /etc/fastserve:/etc/fastserve:ro fastserve \
#     --config /etc/fastserve/fastserve.yaml --addr :8443 --admin :9090
#
# GO_VERSION is go.mod's toolchain line (a test keeps them the same).
ARG GO_VERSION=1.27.3

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no cgo), with no build machine's paths in it; the .git directory,
# when there is one, gives 'fastserve --version' its revision.
RUN CGO_ENABLED=0 go build -trimpath -o /out/fastserve ./cmd/fastserve

# distroless/static: CA certificates, /etc/passwd and tzdata, no shell. The
# nonroot user (65532) cannot bind ports below 1024: map 443 to 8443.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fastserve /usr/local/bin/fastserve
USER nonroot:nonroot
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/fastserve", "serve"]
