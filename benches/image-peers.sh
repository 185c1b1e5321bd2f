#!/usr/bin/env bash
# Image import side by side: `examples/images import` (release build) against `umoci unpack`
# and GNU `tar -xzf` of the same gzip layers, in one run, on one filesystem.
#
#   sudo benches/image-peers.sh [ROOTFS] [RUNS]
#
# ROOTFS: a tree to pack (default $CARGO_TARGET_DIR/debian-bookworm-minbase, the debootstrap
# minbase the tests use); RUNS: runs per tool (default 7). It is packed once, with GNU tar
# (--sort=name, numeric owners, --format=posix for xattrs) and `gzip -n` (level 6, as docker
# and umoci write), as three layers: usr/lib, the rest of usr, everything else, in an OCI
# layout written here (index.json tag `bench`). Then, per run and in turn:
#   contain  images --store S import LAYOUT:bench      (a fresh store S each run)
#   umoci    umoci unpack --image LAYOUT:bench B        (a fresh bundle B each run)
#   tar      tar -xzf L1; tar -xzf L2; tar -xzf L3      (into an empty dir; no whiteouts)
#   pigz     the same with tar -I pigz                  (only if pigz is installed)
# Each run writes a new directory, all removed at the end; `sync` runs before each run, outside
# the timing (hyperfine's --prepare when hyperfine is installed; else our own loop with
# `date +%s%N`, round robin). Prints the
# median and min of each and the ratios of medians to contain's (and, without hyperfine,
# each run's CPU time: on a machine busy with other work, a tool with more threads gets a
# larger share of it).
#
# Needs: root, GNU tar, gzip, sha256sum, umoci, the release example
# (cargo build --release --example images). Installs nothing; says what is missing.
# The work directory ($CARGO_TARGET_DIR/tmp/image-peers, or $IMAGE_PEERS_DIR) is removed
# at exit; it must not be a tmpfs unless the whole comparison is. IMAGE_PEERS_LOOP=SIZE
# (e.g. 8G) mounts a fresh ext4 image file of that size there first, for every tool alike.
# IMAGE_PEERS_BASE=PATH adds a row for another build of the images example (a change's
# before).
set -euo pipefail

die() { echo "image-peers: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (umoci and tar keep owners only as root)"
target=${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}
rootfs=${1:-$target/debian-bookworm-minbase}
runs=${2:-7}
[ -d "$rootfs/usr/lib" ] || die "no rootfs at $rootfs (give a path: a tree with usr/lib)"
images=$target/release/examples/images
missing=()
for t in tar gzip sha256sum umoci; do command -v "$t" >/dev/null || missing+=("$t"); done
tar --version 2>/dev/null | grep -q 'GNU tar' || missing+=("GNU tar")
[ -x "$images" ] || missing+=("$images (cargo build --release --example images)")
[ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]}"
have_pigz=$(command -v pigz || true)
have_hyperfine=$(command -v hyperfine || true)
[ -n "$have_pigz" ] || echo "image-peers: pigz not installed: no tar -I pigz row (apt-get install pigz)"
[ -n "$have_hyperfine" ] || echo "image-peers: hyperfine not installed: timing with date +%s%N (apt-get install hyperfine)"

work=${IMAGE_PEERS_DIR:-$target/tmp/image-peers}
rm -rf "$work"
mkdir -p "$work"
if [ -n "${IMAGE_PEERS_LOOP:-}" ]; then
    # A fresh ext4 (mkfs defaults: with a journal) on a loop device, for every tool alike:
    # away from other processes' deletions on a shared filesystem (see below).
    command -v mkfs.ext4 >/dev/null || die "missing: mkfs.ext4 (e2fsprogs)"
    truncate -s "$IMAGE_PEERS_LOOP" "$work.img"
    mkfs.ext4 -q -F "$work.img"
    mount -o loop "$work.img" "$work"
    trap 'umount "$work"; rm -rf "$work" "$work.img"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi
fstype=$(stat -f -c %T "$work")
echo "image-peers: work dir $work ($fstype), $(nproc) CPUs, kernel $(uname -r), $runs runs"

# --- the layout -----------------------------------------------------------------------
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
packtar() { # packtar OUT.tar ARGS... (paths relative to the rootfs)
    local out=$1
    shift
    tar --sort=name --numeric-owner --format=posix --pax-option=delete=atime,delete=ctime \
        --xattrs --xattrs-include='*' -C "$rootfs" -cf "$out" "$@"
}
usr_rest=()
while IFS= read -r e; do [ "$e" = lib ] || usr_rest+=("usr/$e"); done < <(ls -A "$rootfs/usr")
top_rest=()
while IFS= read -r e; do [ "$e" = usr ] || top_rest+=("$e"); done < <(ls -A "$rootfs")
packtar "$work/l1.tar" --no-recursion usr --recursion usr/lib
packtar "$work/l2.tar" "${usr_rest[@]}"
packtar "$work/l3.tar" "${top_rest[@]}"
layers_json=""
diffs_json=""
blobs=()
total=0
for i in 1 2 3; do
    diff=$(sha256sum <"$work/l$i.tar" | cut -d' ' -f1)
    gzip -n -6 <"$work/l$i.tar" >"$work/l$i.tar.gz"
    rm "$work/l$i.tar"
    dig=$(sha256sum <"$work/l$i.tar.gz" | cut -d' ' -f1)
    size=$(stat -c %s "$work/l$i.tar.gz")
    mv "$work/l$i.tar.gz" "$layout/blobs/sha256/$dig"
    blobs+=("$layout/blobs/sha256/$dig")
    total=$((total + size))
    layers_json+="${layers_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dig\",\"size\":$size}"
    diffs_json+="${diffs_json:+,}\"sha256:$diff\""
    echo "image-peers: layer $i: $size B gzip"
done
echo "image-peers: $total B gzip in all ($(du -sh "$rootfs" | cut -f1) unpacked)"
put_blob() { # put_blob FILE -> prints "digest size"
    local d s
    d=$(sha256sum <"$1" | cut -d' ' -f1)
    s=$(stat -c %s "$1")
    mv "$1" "$layout/blobs/sha256/$d"
    echo "$d $s"
}
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$diffs_json" >"$work/config.json"
read -r cdig csize < <(put_blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$cdig" "$csize" "$layers_json" >"$work/manifest.json"
read -r mdig msize < <(put_blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
    "$mdig" "$msize" >"$layout/index.json"

# --- the commands -----------------------------------------------------------------------
# Each run writes into a new directory under $runs_dir (`mktemp -u`, about a millisecond),
# and nothing is removed until the end: on ext4 without a journal, inode allocation skips
# inodes freed in the last minute (five while their table block is dirty), one lookup each,
# so a run right after an `rm -rf` of the last run's 10^4 files pays for that scan, whatever
# the tool. `sync` before each run (outside the timing) flushes the last run's writes.
runs_dir=$work/runs
mkdir "$runs_dir"
new="\$(mktemp -u -p $runs_dir)"
names=(contain umoci tar)
cmds=(
    "$images --store $new import $layout:bench"
    "umoci unpack --image $layout:bench $new"
    "o=$new && mkdir \$o && for b in ${blobs[*]}; do tar -xzf \$b -C \$o || exit 1; done"
)
if [ -n "${IMAGE_PEERS_BASE:-}" ]; then
    # Another build of the example (an earlier commit's, say), to measure a change.
    names+=(base)
    cmds+=("$IMAGE_PEERS_BASE --store $new import $layout:bench")
fi
if [ -n "$have_pigz" ]; then
    names+=(pigz)
    cmds+=("o=$new && mkdir \$o && for b in ${blobs[*]}; do tar -I pigz -xf \$b -C \$o || exit 1; done")
fi
prepare="sync"
avail=$(df -k --output=avail "$work" | tail -1)
need=$(($(du -sk "$rootfs" | cut -f1) * (runs + 1) * ${#names[@]} * 11 / 10))
[ "$avail" -gt "$need" ] || die "needs about $((need >> 20)) GiB free in $work (runs are kept until the end)"

# Check each once (and warm the page cache with the blobs).
for k in "${!names[@]}"; do
    bash -c "$prepare"
    bash -c "${cmds[$k]}" >/dev/null || die "${names[$k]} failed: ${cmds[$k]}"
done

declare -A median min
if [ -n "$have_hyperfine" ]; then
    hf=(hyperfine --runs "$runs" --prepare "$prepare" --export-json "$work/hf.json" --style basic)
    for k in "${!names[@]}"; do hf+=(-n "${names[$k]}" "${cmds[$k]}"); done
    "${hf[@]}"
    while read -r n med mn; do
        median[$n]=$med
        min[$n]=$mn
    done < <(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], int(r["median"] * 1e9), int(r["min"] * 1e9))' "$work/hf.json")
else
    declare -A times cpus
    # Round robin: each run times every tool once, so drift on a busy machine hits all alike.
    for ((r = 0; r < runs; r++)); do
        for k in "${!names[@]}"; do
            bash -c "$prepare"
            t0=$(date +%s%N)
            # `times`: the CPU time (user, system) of the command and its children.
            cpu=$(bash -c "${cmds[$k]} >/dev/null && times" | tail -1) || die "${names[$k]} failed"
            t1=$(date +%s%N)
            times[${names[$k]}]+="$((t1 - t0)) "
            cpus[${names[$k]}]+="$(awk '{ split($1, u, "m"); split($2, s, "m");
                printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000 }' <<<"$cpu") "
        done
    done
    for n in "${names[@]}"; do
        read -r -a ts <<<"${times[$n]}"
        sorted=($(printf '%s\n' "${ts[@]}" | sort -n))
        c=${#sorted[@]}
        if ((c % 2)); then
            median[$n]=${sorted[$((c / 2))]}
        else
            median[$n]=$(((sorted[c / 2 - 1] + sorted[c / 2]) / 2))
        fi
        min[$n]=${sorted[0]}
        echo "image-peers: $n runs (ms): $(for t in "${ts[@]}"; do printf '%d ' $((t / 1000000)); done)"
        echo "image-peers: $n CPU, user + system (ms): ${cpus[$n]}"
    done
fi

ms() { awk -v n="$1" 'BEGIN { printf "%.0f", n / 1e6 }'; }
printf '\n%-8s %10s %10s %18s\n' tool median_ms min_ms "median vs contain"
for n in "${names[@]}"; do
    ratio=$(awk -v a="${median[$n]}" -v b="${median[contain]}" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-8s %10s %10s %18s\n' "$n" "$(ms "${median[$n]}")" "$(ms "${min[$n]}")" "$ratio"
done
echo "(ratio > 1: contain is faster; goal: umoci >= 2x, tar >= 1.5x)"
