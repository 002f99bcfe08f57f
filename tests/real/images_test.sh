#!/usr/bin/env bash
# hack/images.sh: every image is read by a tool we did not write (skopeo inspect), has os/architecture,
# its entrypoint and the non-root user 65532, carries the name containerd imports it under, holds no
# shell, and is reproducible: writing it again gives the same bytes. Needs no root.
. "$(dirname "$0")/lib.sh"
command -v skopeo >/dev/null || fail "skopeo is missing (hack/deps.sh installs it)"
images_sh="${TESTS_REAL_DIR}/../../hack/images.sh"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
tag="$IMAGE_TAG"

"$images_sh" --bin-dir "${GASOLINE_BIN_DIR}" --out "$out/a"
"$images_sh" --bin-dir "${GASOLINE_BIN_DIR}" --out "$out/b" >/dev/null

declare -A repos=([gasoline-kv]=gasoline/gasoline-kv [gasoline-worker]=gasoline/gasoline-worker
  [gasoline-operator]=gasoline/gasoline-operator [gasoline-gateway]=gasoline/gasoline-gateway
  [gasoline-example-app]=gasoline/example-app)
for n in "${!repos[@]}"; do
  f="$out/a/$n.tar"
  [ -f "$f" ] || fail "$f was not written"
  cmp -s "$f" "$out/b/$n.tar" || fail "$n: a second run wrote different bytes (not reproducible)"
  inspect="$(skopeo inspect "oci-archive:$f")" || fail "skopeo cannot read $f"
  config="$(skopeo inspect --config "oci-archive:$f")"
  [ "$(jq -r .Os <<<"$inspect")/$(jq -r .Architecture <<<"$inspect")" = linux/amd64 ] || fail "$n: os/architecture: $(jq -c '[.Os,.Architecture]' <<<"$inspect")"
  [ "$(jq -r '.config.Entrypoint[0]' <<<"$config")" = "/usr/bin/$n" ] || fail "$n: entrypoint $(jq -c .config.Entrypoint <<<"$config")"
  [ "$(jq -r '.config.User' <<<"$config")" = 65532:65532 ] || fail "$n: user $(jq -r .config.User <<<"$config")"
  name="$(tar -xOf "$f" index.json | jq -r '.manifests[0].annotations["io.containerd.image.name"]')"
  [ "$name" = "docker.io/${repos[$n]}:${tag}" ] || fail "$n: io.containerd.image.name is '${name}'"
  files="$(skopeo copy -q "oci-archive:$f" "dir:$out/$n.dir" >/dev/null && \
    tar -tzf "$out/$n.dir/$(jq -r '.Layers[0]' <<<"$inspect" | cut -d: -f2)")"
  grep -q "^\./usr/bin/$n\$" <<<"$files" || fail "$n: the binary is not at /usr/bin/$n"
  grep -q '^\./etc/passwd$' <<<"$files" || fail "$n: no /etc/passwd"
  if grep -E '(^|/)(sh|bash|busybox|apt|dpkg)$' <<<"$files"; then fail "$n: holds a shell or package manager"; fi
  info "ok: $n: $(jq -r .Digest <<<"$inspect"), $(grep -c . <<<"$files") entries, $(($(stat -c %s "$f") / 1024)) KiB"
done
