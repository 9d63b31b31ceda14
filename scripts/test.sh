#!/usr/bin/env bash
# synack's test command (the one CI runs, see .ci/run): formatting, lints, the Rust test suite, and
# the scripts' own checks, with a summary at the end.
#
#   sudo scripts/test.sh [--scripts-only]
#
#   1. cargo fmt --check
#   2. cargo clippy --all-targets -- -D warnings       (skipped if clippy is not installed)
#   3. cargo test --release                            (as root: the suite includes AF_XDP/veth tests
#                                                       that create their own network namespaces)
#   4. scripts: bash -n, the output parsers' tests, shellcheck (if installed), testbed up/down (root)
#
#   --scripts-only   step 4 only
#
# Every step runs, also after a failure, and has a time limit. Exit status 0 only if no step failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/toolchain.sh
. "$ROOT/scripts/toolchain.sh"

SELF="$ROOT/scripts/test.sh"
scripts_only=0
internal=0
[[ ${1:-} == --internal ]] && internal=1
for a in "$@"; do
	((internal)) && break
	case $a in
	--scripts-only) scripts_only=1 ;;
	-h | --help)
		sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "test.sh: unknown option '$a' (see --help)" >&2
		exit 2
		;;
	esac
done

NAMES=() STATES=() TIMES=()
record() {
	NAMES+=("$1")
	STATES+=("$2")
	TIMES+=("$3")
}

# step NAME SECONDS CMD...: run CMD with a time limit (the whole process group is stopped at the
# limit), print its output as it comes, record PASS/FAIL/TIMEOUT. CMD may be a function of this file
# (it is then run as `test.sh --internal FUNCTION ARGS`).
step() {
	local name=$1 limit=$2 t0 rc=0 state
	shift 2
	printf '\n==== %s\n' "$name"
	t0=$(date +%s)
	if [[ $(type -t "$1") == function ]]; then
		timeout -k 10 "$limit" "$SELF" --internal "$@" 2>&1 || rc=$?
	else
		timeout -k 10 "$limit" "$@" 2>&1 || rc=$?
	fi
	case $rc in
	0) state=PASS ;;
	124 | 137) state="TIMEOUT (${limit}s)" ;;
	*) state="FAIL (status $rc)" ;;
	esac
	record "$name" "$state" "$(($(date +%s) - t0))s"
}
skip() {
	printf '\n==== %s\n(skipped: %s)\n' "$1" "$2"
	record "$1" "SKIP ($2)" -
}

cargo_step() { run_cargo_here "$@"; }

shell_files=("$ROOT"/scripts/*.sh "$ROOT"/bench/*.sh "$ROOT/.ci/run")
py_files=("$ROOT"/scripts/*.py "$ROOT"/bench/*.py)
syntax() {
	local f rc=0
	for f in "${shell_files[@]}"; do bash -n "$f" || rc=1; done
	python3 -m py_compile "${py_files[@]}" || rc=1
	find "$ROOT/scripts" "$ROOT/bench" -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null
	return $rc
}
lint() { cd "$ROOT" && shellcheck -x scripts/*.sh bench/*.sh .ci/run; }
testbed_smoke() {
	local p
	# shellcheck source=scripts/testbed.sh
	. "$ROOT/scripts/testbed.sh"
	p=$(tb_unique_prefix tst) || return 1
	tb_up "$p" 2 >/dev/null || return 1
	local rc=0 st=0
	# the server namespace's kernel answers a SYN to the unused port with RST: curl is refused at once
	ip netns exec "$p-cli" curl -s -m 3 -o /dev/null "http://$TB_SRV_IP:8080/" || st=$?
	if [[ $st != 7 ]]; then
		echo "expected 'connection refused' (curl status 7) from the empty server namespace, got $st"
		rc=1
	fi
	tb_down "$p" || rc=1
	if tb_ns_exists "$p-srv" || tb_ns_exists "$p-cli"; then
		echo "namespaces of $p left behind"
		rc=1
	fi
	return $rc
}

if ((internal)); then
	shift
	"$@"
	exit
fi

if ((!scripts_only)); then
	if [[ $(id -u) != 0 ]]; then
		echo "test.sh: note: not root; the tests that need root (AF_XDP, veth) will fail or skip" >&2
	fi
	if ! find_cargo >/dev/null; then
		run_cargo_here --version # prints how to install Rust
		record "cargo" "FAIL (cargo not found)" -
	else
		if cargo_step fmt --version >/dev/null 2>&1; then
			step "cargo fmt --check" 120 cargo_step fmt --check
		else
			skip "cargo fmt --check" "rustfmt not installed (rustup component add rustfmt)"
		fi
		if cargo_step clippy --version >/dev/null 2>&1; then
			step "cargo clippy --all-targets -- -D warnings" 900 cargo_step clippy --all-targets -- -D warnings
		else
			skip "cargo clippy --all-targets -- -D warnings" "clippy not installed (rustup component add clippy)"
		fi
		step "cargo test --release" 900 cargo_step test --release
	fi
fi

step "scripts: bash -n, py_compile" 60 syntax
step "scripts: output parser tests" 60 python3 "$ROOT/scripts/test_loadgen.py"
if command -v shellcheck >/dev/null 2>&1; then
	step "scripts: shellcheck" 120 lint
else
	skip "scripts: shellcheck" "shellcheck not installed"
fi
if [[ $(id -u) == 0 ]] && command -v ip >/dev/null 2>&1 && command -v curl >/dev/null 2>&1; then
	step "scripts: testbed up/down" 60 testbed_smoke
else
	skip "scripts: testbed up/down" "needs root, ip and curl"
fi

printf '\n==== summary\n'
failed=0
for i in "${!NAMES[@]}"; do
	printf '  %-8s %6s  %s\n' "${STATES[$i]%% *}" "${TIMES[$i]}" "${NAMES[$i]}"
	[[ ${STATES[$i]} == FAIL* || ${STATES[$i]} == TIMEOUT* ]] && failed=$((failed + 1))
done
for i in "${!NAMES[@]}"; do
	[[ ${STATES[$i]} == PASS ]] || printf '  %s: %s\n' "${NAMES[$i]}" "${STATES[$i]}"
done
if ((failed)); then
	echo "test.sh: $failed step(s) failed"
	exit 1
fi
echo "test.sh: all steps passed"
