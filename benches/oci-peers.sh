#!/usr/bin/env bash
# contain-oci against crun, in one hyperfine run: `run` of /bin/true from one bundle, and
# create + start + delete --force as three processes (what a shim does; it waits for the
# exit itself), with and without a cgroupsPath.
#
#   sudo benches/oci-peers.sh [RUNS]        (default 60 runs per command, 3 warmups)
#
# The bundles come from `crun spec` (pid, net, ipc, uts and mount namespaces, /proc, /dev,
# /sys, masked and read-only paths, a device cgroup rule, no seccomp), with a static busybox
# rootfs, read-only, and args ["/bin/true"]; `peers-bench/crun` as the relative cgroupsPath of
# the cgroup rows (crun puts it below its own cgroup, contain-oci below the parent of its own,
# as runc's v2 driver does). Both runtimes keep their state under the work directory (one
# disk, the same for both), not under /run.
#
# On a hybrid host (v1 controllers, cgroup2 with some of them) crun 1.8 refuses to start
# unless unified/cgroup.controllers reads empty; as ../shared/tools/peers-bench.sh does, the
# timing runs in a private mount namespace where that file is covered by an empty one, for
# both runtimes alike. Needs: root, crun, hyperfine, busybox-static, jq (installed with
# apt-get when missing), and contain-oci as shipped (`cargo xtask build-oci`: static, LTO;
# CONTAIN_OCI=PATH for another build). Everything it makes is under the work directory
# ($OCI_PEERS_DIR, default /tmp/contain-oci-peers), removed at the end, as are the empty
# `peers-bench` cgroups crun leaves.
set -euo pipefail

RUNS=${1:-60}
W=${OCI_PEERS_DIR:-/tmp/contain-oci-peers}
HERE=$(cd "$(dirname "$0")/.." && pwd)
C=${CONTAIN_OCI:-${CARGO_TARGET_DIR:-$HERE/target}/$(rustc -vV | sed -n 's/^host: //p')/oci/contain-oci}

if [ "${1:-}" = "__timed" ]; then
    RUNS=$2
    if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
        : > "$W/empty"
        mount --bind -o ro "$W/empty" /sys/fs/cgroup/unified/cgroup.controllers
    fi
    CR="crun --root $W/state/crun"
    CO="$C --root $W/state/contain"
    for rt in crun contain; do
        case $rt in crun) R=$CR ;; *) R=$CO ;; esac
        cat > "$W/$rt-csd.sh" <<EOF
#!/bin/sh
$R create -b $W/nocg csd-$rt >/dev/null 2>&1 || exit 1
$R start csd-$rt || exit 2
$R delete -f csd-$rt || exit 3
EOF
        chmod +x "$W/$rt-csd.sh"
        "$W/$rt-csd.sh" || { echo "oci-peers: $rt create+start+delete fails" >&2; exit 1; }
    done
    hyperfine -N --style basic --warmup 3 --runs "$RUNS" --export-json "$W/oci.json" \
        -n "plain /bin/true" /bin/true \
        -n "crun create+start+delete" "$W/crun-csd.sh" \
        -n "contain-oci create+start+delete" "$W/contain-csd.sh" \
        -n "crun run" "$CR --cgroup-manager=disabled run -b $W/nocg r-crun" \
        -n "contain-oci run" "$CO run -b $W/nocg r-contain" \
        -n "crun run, cgroupsPath" "$CR run -b $W/cg c-crun" \
        -n "contain-oci run, cgroupsPath" "$CO run -b $W/cg c-contain" >/dev/null
    jq -r '.results[] | [.command, (.median*1000), ((.user+.system)*1000)] | @tsv' "$W/oci.json" |
        awk -F'\t' 'BEGIN { print "| command | median ms | user+sys ms | x crun |"; print "|---|---|---|---|" }
            { name[NR]=$1; med[NR]=$2; cpu[NR]=$3; if ($1 ~ /^crun/) ref[substr($1, 6)]=$2 }
            END { for (i = 1; i <= NR; i++) { r = "";
                    if (name[i] ~ /^contain-oci/) r = sprintf("%.2f", med[i] / ref[substr(name[i], 13)]);
                    printf "| %s | %.2f | %.2f | %s |\n", name[i], med[i], cpu[i], r } }'
    exit 0
fi

[ "$(id -u)" = 0 ] || { echo "oci-peers: run as root" >&2; exit 1; }
[ -x "$C" ] || { echo "oci-peers: no $C (cargo xtask build-oci)" >&2; exit 1; }
missing=()
for t in crun hyperfine jq; do command -v "$t" >/dev/null || missing+=("$t"); done
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rm -rf "$W"
# crun removes a container's own group but not the `peers-bench` parent it made in each
# hierarchy (contain-oci removes the parents it made): those go too, when empty.
trap 'rm -rf "$W"; rmdir /sys/fs/cgroup/*/peers-bench /sys/fs/cgroup/peers-bench 2>/dev/null || true' EXIT
mkdir -p "$W/rootfs/bin" "$W/rootfs/proc" "$W/rootfs/dev" "$W/rootfs/sys" "$W/state" "$W/nocg" "$W/cg"
cp /bin/busybox "$W/rootfs/bin/busybox"
for a in true sh; do ln -s busybox "$W/rootfs/bin/$a"; done
(cd "$W" && crun spec)
f='.process.terminal=false | .process.args=["/bin/true"] | .root.path="'"$W"'/rootfs" | .root.readonly=true'
jq "$f" "$W/config.json" > "$W/nocg/config.json"
jq "$f"' | .linux.cgroupsPath="peers-bench/crun"' "$W/config.json" > "$W/cg/config.json"
echo "== $(uname -r), $(nproc) CPUs; crun $(crun --version | awk 'NR==1{print $3}'); $("$C" --version | head -1)"
unshare -m "$0" __timed "$RUNS"
