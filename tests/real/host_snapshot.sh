#!/usr/bin/env bash
# Prints what a real node may change on the host, one sorted line per fact: mounts, cgroups (two levels),
# network links, routes and namespaces of the host's network namespace, its iptables rules, sysctls, the
# fixed host paths kubelet/containerd/CNI use, and processes of the node. real.up takes it before
# `up --real`, real.down after `down`; they must be equal.
set -euo pipefail

section() { echo "## $1"; }

section mounts
awk '{ print $5, $9 }' /proc/self/mountinfo | sort -u

section cgroups
# The top level of every hierarchy (kubelet's kubepods and containerd's k8s.io live there); deeper
# levels belong to whatever else runs on the machine.
awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | sort -u |
  while read -r root; do find "$root" -mindepth 1 -maxdepth 1 -type d 2>/dev/null; done | sort

section links
ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' | sort
section routes
{ ip route show table all; ip -6 route show table all; } | sort
section netns
ip netns list 2>/dev/null | sort
[ -e /run/netns ] && echo "/run/netns exists" || echo "/run/netns absent"

section iptables
# Rules and chains without packet counters.
for t in iptables-save ip6tables-save; do
  if command -v "$t" >/dev/null; then
    { "$t" 2>/dev/null || true; } | { grep -v '^#' || true; } | sed -e 's/\[[0-9]*:[0-9]*\]//' -e "s/^/$t: /"
  fi
done | sort

section sysctls
# Everything but counters and random values that change on their own.
sysctl -a 2>/dev/null | grep -v -E '^(kernel\.random\.|kernel\.ns_last_pid|kernel\.pty\.nr|fs\.(dentry-state|inode-nr|inode-state|file-nr|aio-nr|quota\.)|net\.netfilter\.nf_conntrack_count|vm\.stat_refresh|kernel\.sched_domain|dev\.cdrom|fs\.binfmt_misc|net\.ipv6\.conf\.[^.]*\.stable_secret|kernel\.perf_event_max_sample_rate|vm\.nr_)' | sort

section paths
for p in /var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd /run/netns \
  /opt/containerd /var/run/nri /usr/libexec/kubernetes /etc/cni /opt/cni; do
  [ -e "$p" ] && echo "$p exists" || echo "$p absent"
done

section processes
# Only this node's processes (other work on the machine comes and goes, e.g. the `cluster` label's control
# plane from the same binaries): anything naming the node's state dir (components, containerd shims), and
# container processes (their cgroup is below kubepods).
state="${GASOLINE_CLUSTER_DIR:-/tmp/gasoline-cluster}/"
for p in /proc/[0-9]*; do
  cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
  case "$cmd" in *"$state"*) echo "process ${cmd%% *}" ;; esac
  if grep -q kubepods "$p/cgroup" 2>/dev/null; then echo "container process $(cat "$p/comm" 2>/dev/null)"; fi
done | sort
