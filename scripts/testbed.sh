#!/usr/bin/env bash
# Test hosts for synack: two network namespaces joined by a veth pair.
#
#   scripts/testbed.sh up   PREFIX [QUEUES]   create PREFIX-srv and PREFIX-cli
#   scripts/testbed.sh down PREFIX            remove them (idempotent)
#   scripts/testbed.sh show PREFIX            print the names and addresses
#
#   PREFIX-srv: veth PREFIXs0, 198.18.0.1/24 and fd00:198:18::1/64, route 198.19.89.0/24 via
#               198.18.0.2 (xgen's spoofed net)
#   PREFIX-cli: veth PREFIXc0, 198.18.0.2/24 and fd00:198:18::2/64
#
# PREFIX: 1-13 characters [a-z0-9], so that "PREFIXs0" fits IFNAMSIZ (15 characters).
# QUEUES: TX/RX queues on each end of the veth pair (default 1); one AF_XDP socket binds one queue.
#
# Checksum and segmentation offloads are turned off on both ends (tx, tso, gso, gro, and rx): with tx
# offload on, the kernel hands veth frames with partial TCP checksums, which an XDP/AF_XDP receiver
# sees as wrong (../shared/TESTBED.md). rx off makes each namespace's kernel verify every checksum in
# software, so a bad checksum sent by synack is dropped by the client kernel instead of slipping by.
#
# GRO stays off on the client end too, unless TB_CLIENT_GRO=on: frames that an XDP program itself
# transmits (XDP_TX, or a redirect into the veth) reach the client only if its veth end has GRO on or an
# XDP program of its own (TESTBED.md). AF_XDP transmit (copy mode) goes through the skb path and is
# not affected; turn it on if synack ever answers with XDP_TX.
#
# IPv6 is on, without duplicate address detection, router solicitations or autoconfiguration: the
# addresses are usable at once and the kernel answers neighbour discovery for them.
#
# Nothing listens in the server namespace, so its kernel answers SYNs to any port with RST,ACK. While
# synack runs, its XDP program steers TCP for 198.18.0.1:PORT (and [fd00:198:18::1]:PORT when it
# serves that too) away from the kernel; once synack exits (its bpf_link goes with it), the kernel
# answers with RST again.
#
# The file can also be sourced: it then only defines the tb_* functions and variables below.

TB_SRV_IP=198.18.0.1
TB_CLI_IP=198.18.0.2
TB_PREFIXLEN=24
# IPv6 on the same veth pair (ULA, RFC 4193), added without duplicate address detection so
# that it is usable at once.
TB_SRV_IP6=fd00:198:18::1
TB_CLI_IP6=fd00:198:18::2
TB_XGEN_NET=198.19.89.0/24   # xgen --src-net: client addresses xgen spoofs; routed to the client side

tb_log() { printf 'testbed: %s\n' "$*" >&2; }

# tb_names PREFIX: set TB_SRV_NS TB_CLI_NS TB_SRV_IF TB_CLI_IF for PREFIX.
tb_names() {
	local p=$1
	if ! [[ $p =~ ^[a-z0-9]{1,13}$ ]]; then
		tb_log "bad prefix '$p': use 1-13 characters [a-z0-9] (interface names must fit 15 characters)"
		return 2
	fi
	TB_SRV_NS="${p}-srv"
	TB_CLI_NS="${p}-cli"
	TB_SRV_IF="${p}s0"
	TB_CLI_IF="${p}c0"
}

tb_ns_exists() { [[ -e /run/netns/$1 ]]; }

# tb_unique_prefix BASE: print a prefix BASE<digits> whose namespaces do not exist yet.
tb_unique_prefix() {
	local base=$1 p i
	for i in 1 2 3 4 5 6 7 8; do
		if [[ $i == 1 ]]; then p="${base}$$"; else p="${base}$((RANDOM % 100000))"; fi
		p=${p:0:13}
		if ! tb_ns_exists "${p}-srv" && ! tb_ns_exists "${p}-cli"; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	tb_log "no free prefix found for base '$base'"
	return 1
}

tb_require() {
	local c missing=()
	for c in ip ethtool sysctl; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
	if ((${#missing[@]})); then
		tb_log "missing commands: ${missing[*]} (run scripts/setup.sh --deps-only)"
		return 1
	fi
	if [[ $(id -u) != 0 ]]; then
		tb_log "must run as root (network namespaces, veth, XDP)"
		return 1
	fi
}

tb_mount_bpffs() {
	if ! grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
		mkdir -p /sys/fs/bpf
		mount -t bpf bpf /sys/fs/bpf || {
			tb_log "could not mount bpffs on /sys/fs/bpf"
			return 1
		}
	fi
}

# tb_offloads_off NS IF
tb_offloads_off() {
	local ns=$1 ifc=$2
	# One call for all features: ethtool sets what it can and says which it could not change.
	if ! ip netns exec "$ns" ethtool -K "$ifc" rx off tx off tso off gso off gro off >/dev/null 2>&1; then
		# Some feature may be fixed on this kernel: set them one by one, the ones that matter must stick.
		local f
		for f in rx tx tso gso gro; do
			ip netns exec "$ns" ethtool -K "$ifc" "$f" off >/dev/null 2>&1 || true
		done
	fi
	local k state
	for k in tx-checksumming tcp-segmentation-offload generic-segmentation-offload; do
		state=$(ip netns exec "$ns" ethtool -k "$ifc" 2>/dev/null | awk -v k="$k:" '$1 == k { print $2 }')
		if [[ $state != off ]]; then
			tb_log "$ns/$ifc: $k is '$state', not off: frames would carry partial checksums"
			return 1
		fi
	done
}

# tb_up PREFIX [QUEUES]
tb_up() {
	local p=$1 q=${2:-1}
	tb_names "$p" || return
	if ! [[ $q =~ ^[0-9]+$ ]] || ((q < 1 || q > 64)); then
		tb_log "bad queue count '$q' (1-64)"
		return 2
	fi
	tb_require || return
	if tb_ns_exists "$TB_SRV_NS" || tb_ns_exists "$TB_CLI_NS"; then
		tb_log "$TB_SRV_NS or $TB_CLI_NS exists already: run 'scripts/testbed.sh down $p' first"
		return 1
	fi
	tb_mount_bpffs || return
	# From here on, undo what was made if a step fails.
	if ! tb_build "$q"; then
		tb_log "setup of '$p' failed; removing what was made"
		tb_down "$p"
		return 1
	fi
	tb_log "up: $TB_SRV_NS ($TB_SRV_IF $TB_SRV_IP $TB_SRV_IP6) <-> $TB_CLI_NS ($TB_CLI_IF $TB_CLI_IP $TB_CLI_IP6), $q queue(s)"
}

tb_build() {
	local q=$1 ns ifc
	ip netns add "$TB_SRV_NS" || return
	ip netns add "$TB_CLI_NS" || return
	# Created inside the server namespace, so the names never clash in the root namespace.
	ip -n "$TB_SRV_NS" link add "$TB_SRV_IF" numtxqueues "$q" numrxqueues "$q" type veth \
		peer name "$TB_CLI_IF" netns "$TB_CLI_NS" numtxqueues "$q" numrxqueues "$q" || return
	for ns in "$TB_SRV_NS" "$TB_CLI_NS"; do
		ip -n "$ns" link set lo up || return
		# IPv6 without the chatter a LAN host makes: no DAD (the addresses are ours), no router
		# solicitations, no autoconfiguration. The kernel still answers neighbour discovery.
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
			net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.dad_transmits=0 \
			net.ipv6.conf.default.router_solicitations=0 net.ipv6.conf.default.accept_ra=0 \
			net.ipv6.conf.default.autoconf=0 >/dev/null 2>&1 || true
	done
	ip -n "$TB_SRV_NS" addr add "$TB_SRV_IP/$TB_PREFIXLEN" dev "$TB_SRV_IF" || return
	ip -n "$TB_CLI_NS" addr add "$TB_CLI_IP/$TB_PREFIXLEN" dev "$TB_CLI_IF" || return
	local end
	for end in "$TB_SRV_NS $TB_SRV_IF" "$TB_CLI_NS $TB_CLI_IF"; do
		read -r ns ifc <<<"$end"
		ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=0" "net.ipv6.conf.$ifc.accept_dad=0" \
			"net.ipv6.conf.$ifc.dad_transmits=0" "net.ipv6.conf.$ifc.router_solicitations=0" \
			"net.ipv6.conf.$ifc.accept_ra=0" "net.ipv6.conf.$ifc.autoconf=0" >/dev/null || return
	done
	ip -n "$TB_SRV_NS" addr add "$TB_SRV_IP6/64" dev "$TB_SRV_IF" nodad || return
	ip -n "$TB_CLI_NS" addr add "$TB_CLI_IP6/64" dev "$TB_CLI_IF" nodad || return
	tb_offloads_off "$TB_SRV_NS" "$TB_SRV_IF" || return
	tb_offloads_off "$TB_CLI_NS" "$TB_CLI_IF" || return
	if [[ ${TB_CLIENT_GRO:-off} == on ]]; then
		ip netns exec "$TB_CLI_NS" ethtool -K "$TB_CLI_IF" gro on >/dev/null || return
	fi
	ip -n "$TB_SRV_NS" link set "$TB_SRV_IF" up || return
	ip -n "$TB_CLI_NS" link set "$TB_CLI_IF" up || return
	# Replies to xgen's spoofed client addresses go to the client end of the veth.
	ip -n "$TB_SRV_NS" route replace "$TB_XGEN_NET" via "$TB_CLI_IP" dev "$TB_SRV_IF" || return
	# Wait (bounded) until both ends report carrier.
	local i
	for ((i = 0; i < 50; i++)); do
		if ip -n "$TB_SRV_NS" link show "$TB_SRV_IF" | grep -q 'LOWER_UP' &&
			ip -n "$TB_CLI_NS" link show "$TB_CLI_IF" | grep -q 'LOWER_UP'; then
			return 0
		fi
		sleep 0.1
	done
	tb_log "veth link did not come up within 5 s"
	return 1
}

# tb_down PREFIX: remove both namespaces (and with them the veth pair). Succeeds if they are absent.
# Processes still inside a namespace are not killed (only whoever started them may do that); they are
# listed, and the namespace lives on until they exit.
tb_down() {
	local p=$1 ns pids rc=0
	tb_names "$p" || return
	for ns in "$TB_CLI_NS" "$TB_SRV_NS"; do
		tb_ns_exists "$ns" || continue
		pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
		[[ -n $pids ]] && tb_log "warning: processes still in $ns: $pids(not killed by testbed.sh)"
		ip netns del "$ns" || rc=1
	done
	return $rc
}

tb_show() {
	tb_names "$1" || return
	cat <<EOF
SRV_NS=$TB_SRV_NS
CLI_NS=$TB_CLI_NS
SRV_IF=$TB_SRV_IF
CLI_IF=$TB_CLI_IF
SRV_IP=$TB_SRV_IP
CLI_IP=$TB_CLI_IP
SRV_IP6=$TB_SRV_IP6
CLI_IP6=$TB_CLI_IP6
XGEN_SRC_NET=$TB_XGEN_NET
# e.g.: ip netns exec $TB_CLI_NS curl -v http://$TB_SRV_IP:8080/
#       ip netns exec $TB_CLI_NS xgen -i $TB_CLI_IF --dst-ip $TB_SRV_IP --dst-port 8080 --src-net $TB_XGEN_NET
EOF
}

tb_main() {
	local cmd=${1:-}
	case $cmd in
	up)
		[[ $# -ge 2 && $# -le 3 ]] || tb_usage
		tb_up "$2" "${3:-1}" && tb_show "$2"
		;;
	down)
		[[ $# -eq 2 ]] || tb_usage
		tb_require && tb_down "$2"
		;;
	show)
		[[ $# -eq 2 ]] || tb_usage
		tb_show "$2"
		;;
	*) tb_usage ;;
	esac
}

tb_usage() {
	sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	tb_main "$@"
fi
