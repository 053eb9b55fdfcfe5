#!/usr/bin/env bash
# Builds the trunkline container images with no container engine, no
# registry and no base image to pull: OCI image archives assembled from the
# release binaries, the shared libraries they load and a few files of this
# Debian machine, exactly as the final stage of docker/<image>.Dockerfile
# describes them (binary and its path, USER, ENTRYPOINT, EXPOSE, LABEL).
#
#   docker/operator.Dockerfile  --(final stage: FROM distroless/cc, COPY, USER, ...)--.
#   cargo build --release  -->  target/release/trunkline-operator                      |
#   ldd  -->  libc, libgcc_s, ld-linux (from this machine)                             v
#   layer 1 "cc": /etc/passwd, /etc/group, CA bundle, /tmp, /home/nonroot, libraries
#   layer 2:      every COPY of the final stage: /usr/local/bin/trunkline-operator,
#                 trunkline-bgp, and gobgpd (scripts/build-gobgp.sh builds it, static)
#   config:       User, Entrypoint, ExposedPorts, Labels, Env   --> <out>/operator.oci.tar
#
# and `pause`, the pod sandbox image of the local node (scripts/cluster.sh up
# --node): scripts/node/pause.c compiled statically.
#
# The archives are OCI image layouts in a tar (what `ctr images import`
# reads); the index names the image `$IMAGE_REGISTRY/<repository>:<tag>`
# (registry `trunkline.local`, tag the chart's appVersion; pause:
# `trunkline.local/pause:<hash of pause.c>`). The output is the same bytes for
# the same binaries (fixed timestamps and owners, sorted entries).
#
# Usage: scripts/build-images.sh [--out DIR] [--no-build] [IMAGE...]
#   IMAGE       operator, dataplane (the default: both), pause
#   --out DIR   where the archives go (default: <cargo target dir>/images)
#   --no-build  use the release binaries already built (no cargo build)
# Prints, per image, `<IMAGE>_ARCHIVE=<path>` and `<IMAGE>_REF=<name:tag>`
# on stdout (e.g. OPERATOR_ARCHIVE=..., OPERATOR_REF=...); progress on stderr.
#
# Environment: IMAGE_REGISTRY (default trunkline.local), CARGO_TARGET_DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
script="$here/$(basename "$0")"
registry=${IMAGE_REGISTRY:-trunkline.local}

log() { printf '[build-images] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '23,30p' "$script" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

out=
build=1
images=()
while [ $# -gt 0 ]; do
  case $1 in
    --out)
      [ $# -ge 2 ] || usage
      out=$2
      shift 2
      ;;
    --no-build)
      build=0
      shift
      ;;
    operator | dataplane | pause)
      images+=("$1")
      shift
      ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done
[ ${#images[@]} -gt 0 ] || images=(operator dataplane)
for tool in jq sha256sum tar ldd cc; do
  command -v "$tool" >/dev/null || die "$tool is required (scripts/install-deps.sh)"
done

# The cargo target dir: where the release binaries are (and the archives,
# unless --out says otherwise).
target=
if [ -z "$out" ] || [[ " ${images[*]} " =~ \ (operator|dataplane)\  ]]; then
  target=${CARGO_TARGET_DIR:-}
  if [ -z "$target" ]; then
    target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
  fi
  case $target in /*) ;; *) target=$repo/$target ;; esac
fi
out=${out:-$target/images}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tag=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$repo/charts/trunkline/Chart.yaml")
[ -n "$tag" ] || die "no appVersion in charts/trunkline/Chart.yaml"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- the Dockerfile's final stage ------------------------------------------

# final_stage FILE: the instructions after the last FROM (that FROM included),
# one per line, comments and blank lines dropped.
final_stage() {
  awk '/^[[:space:]]*#/ || /^[[:space:]]*$/ { next }
       /^FROM[[:space:]]/ { n = 0 }
       { lines[n++] = $0 }
       END { for (i = 0; i < n; i++) print lines[i] }' "$1"
}

# instruction NAME: the arguments of every NAME instruction of the stage in
# $stage, one per line.
instruction() { printf '%s\n' "$stage" | sed -n "s/^$1[[:space:]]\{1,\}//p"; }

# --- layers -------------------------------------------------------------------

# layer DIR TAR: a reproducible tar of DIR: sorted, mtime 0, owner root;
# `./home/nonroot` (when present) belongs to 65532, as in distroless.
layer() {
  local dir=$1 tar=$2
  local common=(--sort=name --mtime=@0 --numeric-owner --format=gnu -C "$dir")
  tar "${common[@]}" --owner=0 --group=0 --exclude=./home/nonroot -cf "$tar" .
  if [ -d "$dir/home/nonroot" ]; then
    tar "${common[@]}" --owner=65532 --group=65532 --no-recursion -rf "$tar" ./home/nonroot
  fi
}

# add_file ROOT PATH: copies PATH of this machine into ROOT at the same
# place, following symlinks (each link on the way becomes the same link).
add_file() {
  local root=$1 path=$2 dir target
  while :; do
    dir=$(readlink -f "$(dirname "$path")")
    path=$dir/$(basename "$path")
    mkdir -p "$root$dir"
    if [ -L "$path" ]; then
      target=$(readlink "$path")
      ln -sfn "$target" "$root$path"
      case $target in /*) path=$target ;; *) path=$dir/$target ;; esac
    else
      cp "$path" "$root$path"
      chmod 0755 "$root$path"
      return 0
    fi
  done
}

# base_layer BINARY DIR: the runtime of distroless "cc" that BINARY needs:
# the shared libraries it loads (ldd; none for a static binary), users
# root/nobody/nonroot, the CA bundle, /tmp, /home/nonroot; Debian's merged
# /usr layout. Called once per binary of the image, into the same DIR.
base_layer() {
  local binary=$1 root=$2 lib
  mkdir -p "$root"/{etc/ssl/certs,tmp,home/nonroot,usr/bin,usr/sbin,usr/lib,usr/lib64,root}
  ln -sfn usr/bin "$root/bin"
  ln -sfn usr/sbin "$root/sbin"
  ln -sfn usr/lib "$root/lib"
  ln -sfn usr/lib64 "$root/lib64"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  echo "hosts: files dns" >"$root/etc/nsswitch.conf"
  cp /etc/os-release "$root/etc/os-release"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  chmod 0644 "$root"/etc/{passwd,group,nsswitch.conf,os-release} "$root/etc/ssl/certs/ca-certificates.crt"
  # `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
  # "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
  for lib in $(ldd "$binary" 2>/dev/null | grep -o '/[^ ]*' || true); do
    add_file "$root" "$lib"
  done
}

# --- the OCI archive -----------------------------------------------------------

# blob FILE: moves FILE into the layout's blobs, prints its digest.
blob() {
  local sum
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$layout/blobs/sha256/$sum"
  echo "sha256:$sum"
}

# oci_archive NAME REF CONFIG_JSON LAYER_TAR...: writes $out/NAME.oci.tar.
oci_archive() {
  local name=$1 ref=$2 config=$3 diff_ids=() sizes=() t digest config_digest manifest_digest manifest
  shift 3
  layout=$work/$name-layout
  mkdir -p "$layout/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  for t in "$@"; do
    sizes+=("$(stat -c %s "$t")")
    diff_ids+=("$(blob "$t")")
  done
  printf '%s' "$config" | jq -c --args '.rootfs = {type: "layers", diff_ids: $ARGS.positional}' \
    "${diff_ids[@]}" >"$work/config.json"
  local config_size
  config_size=$(stat -c %s "$work/config.json")
  config_digest=$(blob "$work/config.json")
  manifest=$(jq -nc --arg cd "$config_digest" --argjson cs "$config_size" \
    --argjson layers "$(paste -d' ' <(printf '%s\n' "${diff_ids[@]}") <(printf '%s\n' "${sizes[@]}") |
      jq -Rsc 'split("\n") | map(select(length > 0) | split(" ") |
        {mediaType: "application/vnd.oci.image.layer.v1.tar", digest: .[0], size: (.[1] | tonumber)})')" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
      layers: $layers}')
  printf '%s' "$manifest" >"$work/manifest.json"
  local manifest_size
  manifest_size=$(stat -c %s "$work/manifest.json")
  manifest_digest=$(blob "$work/manifest.json")
  jq -nc --arg md "$manifest_digest" --argjson ms "$manifest_size" --arg ref "$ref" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
        platform: {architecture: "amd64", os: "linux"},
        annotations: {"io.containerd.image.name": $ref,
                      "org.opencontainers.image.ref.name": ($ref | split(":") | last)}}]}' \
    >"$layout/index.json"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
    -C "$layout" -cf "$out/$name.oci.tar.tmp" .
  mv "$out/$name.oci.tar.tmp" "$out/$name.oci.tar"
  log "$name: $ref ($manifest_digest) -> $out/$name.oci.tar"
  local upper
  upper=$(echo "$name" | tr a-z A-Z)
  echo "${upper}_ARCHIVE=$out/$name.oci.tar"
  echo "${upper}_REF=$ref"
}

# copied_binary SRC: where this machine has the file a COPY of the final
# stage takes from a build stage: gobgpd from scripts/build-gobgp.sh, any
# other name the workspace's release binary of that name.
copied_binary() {
  case $(basename "$1") in
    gobgpd) "$here/build-gobgp.sh" | sed -n 's/^GOBGPD=//p' ;;
    *) echo "$target/release/$(basename "$1")" ;;
  esac
}

# trunkline_image NAME: the image of docker/NAME.Dockerfile.
trunkline_image() {
  local name=$1 dockerfile=$repo/docker/$1.Dockerfile copy src dest binary user entrypoint
  local root=$work/$name-base app=$work/$name-app first= copied=()
  stage=$(final_stage "$dockerfile")
  user=$(instruction USER)
  entrypoint=$(instruction ENTRYPOINT)
  printf '%s' "$entrypoint" | jq -e 'type == "array"' >/dev/null ||
    die "$dockerfile: ENTRYPOINT must be in JSON form"
  mkdir -p "$root"
  # Every COPY of the final stage: one file from a build stage to its path.
  while read -r copy; do
    src=${copy%% *}
    dest=${copy##* }
    binary=$(copied_binary "$src")
    [ -x "$binary" ] || die "$binary missing (cargo build --release or scripts/build-gobgp.sh failed?)"
    [ -n "$first" ] || first=$binary
    base_layer "$binary" "$root"
    mkdir -p "$app$(dirname "$dest")"
    cp "$binary" "$app$dest"
    chmod 0755 "$app$dest"
    copied+=("COPY $(basename "$binary") $dest")
  done < <(instruction COPY | sed 's/--from=[^ ]* //')
  [ -n "$first" ] || die "$dockerfile: no COPY in the final stage"
  binary=$first
  layer "$root" "$work/$name-base.tar"
  layer "$app" "$work/$name-app.tar"
  local from labels ports config
  from=$(instruction FROM)
  labels=$(instruction LABEL |
    jq -Rsc 'split("\n") | map(select(length > 0) | capture("^(?<key>[^=]+)=\"(?<value>.*)\"$")) | from_entries')
  ports=$(instruction EXPOSE | tr ' ' '\n' | jq -Rsc 'split("\n") | map(select(length > 0) | {key: (if test("/") then . else . + "/tcp" end), value: {}}) | from_entries')
  config=$(jq -nc --arg user "$user" --argjson ep "$entrypoint" --argjson labels "$labels" \
    --argjson ports "$ports" --arg from "$from" --arg copied "$(printf '%s; ' "${copied[@]}" | sed 's/; $//')" --arg bin "$(basename "$binary")" \
    '{created: "1970-01-01T00:00:00Z", architecture: "amd64", os: "linux",
      config: {User: $user, Entrypoint: $ep, ExposedPorts: $ports, Labels: $labels,
               Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]},
      history: [{created: "1970-01-01T00:00:00Z",
                 created_by: ("scripts/build-images.sh: the runtime of " + $from + " that " + $bin + " (and any other binary copied) loads")},
                {created: "1970-01-01T00:00:00Z", created_by: $copied}]}')
  oci_archive "$name" "$registry/trunkline-$name:$tag" "$config" "$work/$name-base.tar" "$work/$name-app.tar"
}

pause_image() {
  local app=$work/pause-app hash config
  mkdir -p "$app"
  cc -static -Os -o "$app/pause" "$here/node/pause.c"
  chmod 0755 "$app/pause"
  hash=$(sha256sum "$here/node/pause.c" | cut -c1-12)
  layer "$app" "$work/pause.tar"
  config=$(jq -nc '{created: "1970-01-01T00:00:00Z", architecture: "amd64", os: "linux",
    config: {User: "65535:65535", Entrypoint: ["/pause"]},
    history: [{created: "1970-01-01T00:00:00Z", created_by: "scripts/build-images.sh: scripts/node/pause.c"}]}')
  oci_archive pause "$registry/pause:$hash" "$config" "$work/pause.tar"
}

packages=()
for image in "${images[@]}"; do
  case $image in
    # The operator image carries the BGP speaker too (docker/operator.Dockerfile).
    operator) packages+=(-p trunkline-operator --bin trunkline-operator -p trunkline-bgp --bin trunkline-bgp) ;;
    dataplane) packages+=(-p trunkline-dataplane --bin trunkline-dataplane) ;;
  esac
done
if [ ${#packages[@]} -gt 0 ] && [ $build = 1 ]; then
  log "cargo build --release ${packages[*]}"
  started=$(date +%s)
  (cd "$repo" && CARGO_TARGET_DIR=$target cargo build --release --locked -q "${packages[@]}")
  log "release build took $(($(date +%s) - started)) s"
fi
for image in "${images[@]}"; do
  case $image in
    pause) pause_image ;;
    *) trunkline_image "$image" ;;
  esac
done
