# A static, non-root hookrelay image:
#
#   docker build -t hookrelay .
#   docker run -p 8080:8080 -v "$PWD/hookrelay.yaml:/etc/hookrelay/hookrelay.yaml:ro" \
#     -v hookrelay-data:/data -e SKETCHPEN_SECRET hookrelay
#
# The config must listen on all interfaces (server.listen: ":8080") and keep
# its store in the volume (storage.path: /data).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/hookrelay ./cmd/hookrelay \
 && mkdir -p /out/data && chown 65532:65532 /out/data

FROM scratch
# CA roots for ACME (tls.domains) and https:// targets.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/hookrelay /hookrelay
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/hookrelay"]
CMD ["serve", "--config", "/etc/hookrelay/hookrelay.yaml"]
