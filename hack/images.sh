#!/usr/bin/env bash
# Container images of our binaries, written as OCI layout tarballs without Docker or a registry.
# Run `hack/images.sh --help`; docs/cluster.md ("Images") explains the layout and how to push.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# uid/gid of every container of the chart (values.yaml podSecurityContext: "nonroot" as in distroless).
NONROOT_ID=65532
# Layers and configs carry this time instead of the build time, so equal inputs give equal digests.
EPOCH_ISO=1970-01-01T00:00:00Z
ARCH=amd64
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

log() { echo "images: $*"; }
die() { echo "images: error: $*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: hack/images.sh [--bin-dir DIR] [--out DIR] [--tag TAG] [NAME...]
       hack/images.sh --single REF --binary PATH --out FILE [--entrypoint PATH] [--static]

Writes one OCI image per binary as an OCI layout tarball (oci-archive), reproducibly: the same binary
and libraries give the same digest. An image holds the (stripped) binary, the shared libraries ldd
lists and the dynamic loader, /etc/passwd and /etc/group with the non-root user ${NONROOT_ID}, the CA
bundle for binaries that link OpenSSL, an empty /tmp, and nothing else (no shell).

Default NAMEs: gasoline-kv gasoline-worker gasoline-operator gasoline-gateway gasoline-example-app, from build/bin into
build/images/NAME.tar, tagged with the chart's appVersion (charts/gasoline/Chart.yaml).

  --bin-dir DIR   where the binaries are (default: build/bin)
  --out DIR       output directory (default: build/images); with --single, the tarball path
  --tag TAG       image tag (default: the chart's appVersion)
  --single REF    write one image named REF (e.g. localhost/gasoline/pause:1) from --binary
  --static        with --single: the binary must be static (no libraries are copied)

Load into containerd: ctr -n k8s.io images import build/images/gasoline-kv.tar
Push to a registry:   skopeo copy oci-archive:build/images/gasoline-kv.tar docker://REGISTRY/gasoline/gasoline-kv:TAG
EOF
}

# Image references of the binaries (the chart's values.yaml and the sample pool name these).
image_repo() {
  case "$1" in
    gasoline-kv) echo gasoline/gasoline-kv ;;
    gasoline-worker) echo gasoline/gasoline-worker ;;
    gasoline-operator) echo gasoline/gasoline-operator ;;
    gasoline-gateway) echo gasoline/gasoline-gateway ;;
    gasoline-example-app) echo gasoline/example-app ;;
    *) die "no image is defined for '$1'" ;;
  esac
}

# containerd stores images under their fully qualified name; kubelet normalizes "gasoline/x:t"
# to "docker.io/gasoline/x:t", so that is the name the import must create.
qualify() {
  local ref="$1" first="${1%%/*}"
  case "$ref" in */*) ;; *) ref="library/$ref"; first=library ;; esac
  case "$first" in *.*|*:*|localhost) echo "$ref" ;; *) echo "docker.io/$ref" ;; esac
}

WORK_DIRS=()
cleanup() { [ ${#WORK_DIRS[@]} -eq 0 ] || rm -rf "${WORK_DIRS[@]}"; }
trap cleanup EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# stage_rootfs DIR BINARY NAME STATIC: fills DIR with the image's files.
stage_rootfs() {
  local dir="$1" bin="$2" name="$3" static="$4" lib real
  mkdir -p "$dir/usr/bin" "$dir/etc" "$dir/tmp"
  # Debug info is most of a RelWithDebInfo binary and is not needed at run time.
  strip --strip-unneeded -o "$dir/usr/bin/$name" "$bin"
  if [ "$static" = 0 ]; then
    # Every library at the path ldd resolves it to (the loader finds them there), copied as files.
    while read -r lib; do
      [ -n "$lib" ] || continue
      real="$(readlink -f "$lib")"
      mkdir -p "$dir$(dirname "$lib")"
      cp "$real" "$dir$lib"
    done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
    # (grep on a captured string: with pipefail, `ldd | grep -q` fails when grep exits first.)
    if grep -q 'libssl\.so' <<<"$(ldd "$bin")"; then
      [ -f "$CA_BUNDLE" ] || die "$CA_BUNDLE missing (apt-get install ca-certificates)"
      mkdir -p "$dir/etc/ssl/certs"
      cp "$CA_BUNDLE" "$dir/etc/ssl/certs/ca-certificates.crt"
    fi
  else
    if ldd "$bin" >/dev/null 2>&1; then die "$bin is not static"; fi
  fi
  printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/:/sbin/nologin\n' "$NONROOT_ID" "$NONROOT_ID" >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%d:\n' "$NONROOT_ID" >"$dir/etc/group"
  printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
  # Fixed modes: the layer must not depend on the umask or on the modes of the host's files.
  find "$dir" -type d -exec chmod 0755 {} +
  find "$dir" -type f -exec chmod 0644 {} +
  find "$dir/usr/bin" "$dir/lib64" "$dir/lib" -type f -exec chmod 0755 {} + 2>/dev/null || true
  chmod 1777 "$dir/tmp"
}

# write_image REF BINARY NAME STATIC USER OUT_TAR: one image as an OCI layout tarball.
write_image() {
  local ref="$1" bin="$2" name="$3" static="$4" user="$5" out="$6" work
  [ -f "$bin" ] || die "binary not found: $bin"
  work="$(mktemp -d)"
  WORK_DIRS+=("$work")
  local root="$work/rootfs" layout="$work/layout"
  stage_rootfs "$root" "$bin" "$name" "$static"
  mkdir -p "$layout/blobs/sha256"

  # The layer: sorted entries, fixed owner and mtime, no atime/ctime; gzip without name or time.
  (cd "$root" && tar --sort=name --mtime="@0" --owner=0 --group=0 --numeric-owner --format=gnu \
    -cf "$work/layer.tar" .)
  local diff_id layer_digest layer_size
  diff_id="$(sha "$work/layer.tar")"
  gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
  layer_digest="$(sha "$work/layer.tar.gz")"
  layer_size="$(size "$work/layer.tar.gz")"
  mv "$work/layer.tar.gz" "$layout/blobs/sha256/$layer_digest"

  jq -cn --arg arch "$ARCH" --arg created "$EPOCH_ISO" --arg user "$user" --arg entry "/usr/bin/$name" \
    --arg diff "sha256:$diff_id" '{
      created: $created, architecture: $arch, os: "linux",
      config: { User: $user, Entrypoint: [$entry], Env: ["PATH=/usr/bin:/bin"], WorkingDir: "/" },
      rootfs: { type: "layers", diff_ids: [$diff] },
      history: [{ created: $created, created_by: "hack/images.sh" }] }' >"$work/config.json"
  local config_digest config_size
  config_digest="$(sha "$work/config.json")"
  config_size="$(size "$work/config.json")"
  mv "$work/config.json" "$layout/blobs/sha256/$config_digest"

  jq -cn --arg cd "sha256:$config_digest" --argjson cs "$config_size" \
    --arg ld "sha256:$layer_digest" --argjson ls "$layer_size" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ld, size: $ls }] }' \
    >"$work/manifest.json"
  local manifest_digest manifest_size
  manifest_digest="$(sha "$work/manifest.json")"
  manifest_size="$(size "$work/manifest.json")"
  mv "$work/manifest.json" "$layout/blobs/sha256/$manifest_digest"

  # io.containerd.image.name: the name `ctr images import` gives the image;
  # org.opencontainers.image.ref.name: the tag skopeo and other OCI tools read.
  jq -cn --arg md "sha256:$manifest_digest" --argjson ms "$manifest_size" \
    --arg name "$(qualify "$ref")" --arg tag "${ref##*:}" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
        platform: { architecture: "amd64", os: "linux" },
        annotations: { "io.containerd.image.name": $name, "org.opencontainers.image.ref.name": $tag } }] }' \
    >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

  chmod -R u=rwX,go=rX "$layout"
  mkdir -p "$(dirname "$out")"
  (cd "$layout" && tar --sort=name --mtime="@0" --owner=0 --group=0 --numeric-owner --format=gnu \
    -cf "$out.tmp" oci-layout index.json blobs)
  mv -f "$out.tmp" "$out"
  printf 'images: %-52s %6s KiB compressed (%s KiB unpacked)  %s  sha256:%s\n' "$(qualify "$ref")" \
    "$((layer_size / 1024))" "$(($(size "$work/layer.tar") / 1024))" "${out#"$ROOT"/}" "${manifest_digest:0:12}"
  rm -rf "$work"
}

app_version() {
  sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$ROOT/charts/gasoline/Chart.yaml"
}

main() {
  local bin_dir="$ROOT/build/bin" out="" tag="" single="" binary="" static=0 names=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --bin-dir) bin_dir="$2"; shift ;;
      --out) out="$2"; shift ;;
      --tag) tag="$2"; shift ;;
      --single) single="$2"; shift ;;
      --binary) binary="$2"; shift ;;
      --static) static=1 ;;
      -h|--help) usage; return 0 ;;
      -*) die "unknown option '$1' (see --help)" ;;
      *) names+=("$1") ;;
    esac
    shift
  done
  command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
  command -v strip >/dev/null || die "strip is needed (apt-get install binutils)"

  if [ -n "$single" ]; then
    { [ -n "$binary" ] && [ -n "$out" ]; } || die "--single needs --binary and --out"
    case "$single" in *:*) ;; *) die "--single needs REPO:TAG" ;; esac
    # A static helper (the pause image) runs as whatever the pod says; no user is forced here.
    write_image "$single" "$binary" "$(basename "$binary")" "$static" "" "$out"
    return 0
  fi

  [ -n "$tag" ] || tag="$(app_version)"
  [ -n "$tag" ] || die "could not read appVersion from charts/gasoline/Chart.yaml"
  [ -n "$out" ] || out="$ROOT/build/images"
  [ ${#names[@]} -gt 0 ] || names=(gasoline-kv gasoline-worker gasoline-operator gasoline-gateway gasoline-example-app)
  local n
  for n in "${names[@]}"; do
    [ -x "$bin_dir/$n" ] || die "$bin_dir/$n is not built (./hack/build.sh $n)"
  done
  for n in "${names[@]}"; do
    write_image "$(image_repo "$n"):$tag" "$bin_dir/$n" "$n" 0 "${NONROOT_ID}:${NONROOT_ID}" "$out/$n.tar"
  done
}

main "$@"
