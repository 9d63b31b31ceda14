# shellcheck shell=bash
# The harness for demo.sh and bench/: servers and load generators on the test hosts (testbed.sh),
# started in the background, tracked by PID, stopped by PID. Sourced, not run.
#
# Expects ROOT set, and testbed.sh and toolchain.sh sourced. Every wait here is bounded.
#
# Pinning: the server runs on H_SERVER_CPU (1), the load generator on H_CLIENT_CPU (0).

H_SERVER_CPU=${H_SERVER_CPU:-1}
H_CLIENT_CPU=${H_CLIENT_CPU:-0}
H_PORT=${H_PORT:-8080}
H_READY_LINE='synack: serving'
# The server address the clients use, and its form in a URL (IPv6 in brackets). Default: the
# bed's IPv4 address (after tb_names). h_family 6 switches to the bed's IPv6 address.
H_SRV_ADDR=${H_SRV_ADDR:-}
H_SRV_HOST=${H_SRV_HOST:-}
H_PIDS=()     # every background PID we started; h_stop_all stops the ones still alive
H_LAST_PID=   # the PID of the last h_start_bg

h_log() { printf '%s\n' "$*" >&2; }

# h_alive PID: the process exists and has not exited (a zombie child counts as exited).
h_alive() {
	local st
	[[ -r /proc/$1/stat ]] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[[ -n $st && $st != Z && $st != X ]]
}

# h_start_bg LOG CMD...: run CMD in the background with stdout and stderr to LOG; sets H_LAST_PID.
# Must be called in the main shell (not inside $(...)), so that the PID is our child.
h_start_bg() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 </dev/null &
	H_LAST_PID=$!
	H_PIDS+=("$H_LAST_PID")
}

# h_stop PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10) for the exit, then SIGKILL.
# Prints nothing; returns the exit status of PID when it is our child (143 for a SIGTERM death).
h_stop() {
	local pid=$1 secs=${2:-10} i rc=0
	[[ -n $pid ]] || return 0
	if h_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < secs * 10; i++)); do
			h_alive "$pid" || break
			sleep 0.1
		done
		if h_alive "$pid"; then
			h_log "pid $pid did not exit within ${secs}s of SIGTERM: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

# h_stop_all: stop every PID we started that is still alive (for traps).
h_stop_all() {
	local pid
	for pid in "${H_PIDS[@]}"; do
		if h_alive "$pid"; then h_stop "$pid" 5 || true; fi
	done
	H_PIDS=()
}

# h_wait_line PID LOG PATTERN SECONDS: wait until LOG contains PATTERN (fixed string). Fails if PID
# exits first or the time runs out.
h_wait_line() {
	local pid=$1 log=$2 pat=$3 secs=$4 i
	for ((i = 0; i < secs * 10; i++)); do
		grep -qF -- "$pat" "$log" 2>/dev/null && return 0
		if ! h_alive "$pid"; then
			grep -qF -- "$pat" "$log" 2>/dev/null && return 0
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# h_wait_http NS URL SECONDS: wait until an HTTP request to URL from NS gets any HTTP response.
h_wait_http() {
	local ns=$1 url=$2 secs=$3 i
	for ((i = 0; i < secs * 5; i++)); do
		if ip netns exec "$ns" curl -s -o /dev/null -m 1 "$url"; then return 0; fi
		sleep 0.2
	done
	return 1
}

# h_srv_addr / h_srv_host: the server address the clients use (H_SRV_ADDR, else the bed's
# IPv4 address) and its URL form.
h_srv_addr() { printf '%s' "${H_SRV_ADDR:-$TB_SRV_IP}"; }
h_srv_host() { printf '%s' "${H_SRV_HOST:-${H_SRV_ADDR:-$TB_SRV_IP}}"; }

# h_family 4|6: which family the clients use: 6 points H_SRV_ADDR at the bed's IPv6 address
# (TB_SRV_IP6). Call after tb_up.
h_family() {
	case $1 in
	4)
		H_SRV_ADDR=$TB_SRV_IP H_SRV_HOST=$TB_SRV_IP
		;;
	6)
		# scripts/testbed.sh gives both ends their IPv6 address; check it is there.
		if ! ip -n "$TB_SRV_NS" -6 addr show dev "$TB_SRV_IF" | grep -q "inet6 $TB_SRV_IP6/"; then
			h_log "h_family 6: $TB_SRV_IF has no $TB_SRV_IP6 (scripts/testbed.sh up adds it)"
			return 1
		fi
		H_SRV_ADDR=$TB_SRV_IP6
		H_SRV_HOST="[$H_SRV_ADDR]"
		;;
	*)
		h_log "h_family: 4 or 6"
		return 1
		;;
	esac
}

# h_start_synack LOG ARGS...: start `synack serve ARGS...` in the server namespace on H_SERVER_CPU
# and wait (up to 20 s) for its ready line. Sets H_SYNACK_PID. On failure, says why (with the end
# of LOG) and returns 1.
h_start_synack() {
	local log=$1 bin
	shift
	bin=$(synack_binary) || return 1
	h_start_bg "$log" ip netns exec "$TB_SRV_NS" taskset -c "$H_SERVER_CPU" "$bin" serve "$@"
	H_SYNACK_PID=$H_LAST_PID
	if ! h_wait_line "$H_SYNACK_PID" "$log" "$H_READY_LINE" 20; then
		if h_alive "$H_SYNACK_PID"; then
			h_log "synack printed no '$H_READY_LINE' line within 20 s; its output:"
			h_stop "$H_SYNACK_PID" 5 || true
		else
			local rc=0
			wait "$H_SYNACK_PID" 2>/dev/null || rc=$?
			h_log "synack exited (status $rc) before printing '$H_READY_LINE'; its output:"
		fi
		tail -n 20 "$log" | sed 's/^/    /' >&2
		return 1
	fi
}

# h_nginx_conf DIR BODY_TEXT WWW|"" [ACCESS_LOG]: write DIR/nginx.conf for one worker on
# the server address (h_srv_host):PORT. With WWW: files from WWW; else `return 200 "BODY_TEXT"` on every path. With
# ACCESS_LOG: `access_log ACCESS_LOG combined;` (else no access log).
h_nginx_conf() {
	local dir=$1 text=$2 www=$3 access=${4:-} loc log="access_log off;"
	[[ -n $access ]] && log="access_log $access combined;"
	if [[ -n $www ]]; then
		loc="root $www;"
	else
		loc="return 200 \"$text\";"
	fi
	cat >"$dir/nginx.conf" <<EOF
# written by synack's scripts/harness.sh: one worker, pinned (taskset -c $H_SERVER_CPU)
worker_processes 1;
worker_cpu_affinity $(h_cpu_mask "$H_SERVER_CPU");
daemon off;
master_process on;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile 65536;
events {
    worker_connections 16384;
}
http {
    $log
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    sendfile on;
    tcp_nodelay on;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen $(h_srv_host):$H_PORT;
        location / {
            $loc
        }
    }
}
EOF
}

# h_cpu_mask N: nginx's worker_cpu_affinity bit mask for CPU N (e.g. 1 -> 10).
h_cpu_mask() {
	local n=$1 m=1 i
	for ((i = 0; i < n; i++)); do m="${m}0"; done
	printf '%s\n' "${m}"
}

# h_start_nginx DIR LOG: start nginx with DIR/nginx.conf in the server namespace on H_SERVER_CPU and
# wait (up to 10 s) until it answers. Sets H_NGINX_PID (the master).
h_start_nginx() {
	local dir=$1 log=$2
	command -v nginx >/dev/null 2>&1 || {
		h_log "nginx not installed (scripts/setup.sh --deps-only installs nginx-light)"
		return 1
	}
	h_start_bg "$log" ip netns exec "$TB_SRV_NS" taskset -c "$H_SERVER_CPU" \
		nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
	H_NGINX_PID=$H_LAST_PID
	if ! h_wait_http "$TB_CLI_NS" "http://$(h_srv_host):$H_PORT/" 10 || ! h_alive "$H_NGINX_PID"; then
		h_log "nginx did not come up; its output and error log:"
		tail -n 20 "$log" "$dir/error.log" 2>/dev/null | sed 's/^/    /' >&2
		h_stop "$H_NGINX_PID" 5 || true
		return 1
	fi
}

# h_cpu_snap FILE [PID [MORE...]]: the cpu lines of /proc/stat, the wall clock, and the CPU time
# (utime+stime, in clock ticks) of PID and its children, all threads included, plus that of each MORE
# (threads of the kernel's that work for the server, say) (for loadgen.py cpu and bench/summarize.py).
h_cpu_snap() {
	local f=$1 pid=${2:-} ticks=0 p t
	{
		grep '^cpu' /proc/stat
		printf 'wall %s\n' "$(date +%s.%N)"
		if [[ -n $pid ]]; then
			ticks=$(h_proc_ticks "$pid")
			for p in "${@:3}"; do
				[[ $p =~ ^[0-9]+$ ]] || continue
				t=$(h_own_ticks "$p")
				ticks=$((ticks + t))
			done
			printf 'proc %s %s\n' "$pid" "$ticks"
		fi
	} >"$f"
}

# h_proc_ticks PID: utime+stime of PID plus its direct children (nginx's master and its worker).
h_proc_ticks() {
	local pid=$1 sum=0 p t kids
	kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
	for p in $pid $kids; do
		t=$(h_own_ticks "$p")
		sum=$((sum + t))
	done
	printf '%s\n' "$sum"
}

# h_own_ticks PID: utime+stime of PID alone, all its threads (0 if it is gone).
h_own_ticks() {
	local t
	# fields after the ") " of the comm: state is 1st, utime is 12th, stime 13th
	t=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
	printf '%s\n' "${t:-0}"
}

# h_run_wrk OUT SECONDS CONNS MODE PATH: wrk from the client namespace on H_CLIENT_CPU, one thread.
# MODE keepalive|close. Output to OUT. Returns wrk's status (124 if it had to be stopped).
h_run_wrk() {
	local out=$1 secs=$2 conns=$3 mode=$4 path=${5:-/}
	local hdr=()
	[[ $mode == close ]] && hdr=(-H 'Connection: close')
	timeout -k 5 $((secs + 20)) ip netns exec "$TB_CLI_NS" taskset -c "$H_CLIENT_CPU" \
		wrk -t1 -c"$conns" -d"${secs}s" --latency "${hdr[@]}" "http://$(h_srv_host):$H_PORT$path" >"$out" 2>&1
}

# h_run_load SYNACK OUT SECONDS CONNS MODE PATH: `synack load` from the client namespace on
# H_CLIENT_CPU, from the client end's own address, to the server's address of the family in use.
h_run_load() {
	local synack=$1 out=$2 secs=$3 conns=$4 mode=$5 path=${6:-/}
	timeout -k 5 $((secs + 20)) ip netns exec "$TB_CLI_NS" taskset -c "$H_CLIENT_CPU" \
		"$synack" load --iface "$TB_CLI_IF" --cores "$H_CLIENT_CPU" -c "$conns" -d "$secs" --mode "$mode" \
		"http://$(h_srv_host):$H_PORT$path" >"$out" 2>&1
}

# h_run_xgen XGEN OUT SECONDS CONNS MODE PATH: xgen from the client namespace on H_CLIENT_CPU.
h_run_xgen() {
	local xgen=$1 out=$2 secs=$3 conns=$4 mode=$5 path=${6:-/}
	timeout -k 5 $((secs + 20)) ip netns exec "$TB_CLI_NS" taskset -c "$H_CLIENT_CPU" \
		"$xgen" -i "$TB_CLI_IF" --dst-ip "$TB_SRV_IP" --dst-port "$H_PORT" --src-net "$TB_XGEN_NET" \
		-c "$conns" -d "$secs" --mode "$mode" --path "$path" >"$out" 2>&1
}
