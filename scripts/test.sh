#!/usr/bin/env bash
# synack's test command (the one CI runs, see .ci/run): formatting, lints, the Rust test suite, and
# the scripts' own checks, with a summary at the end.
#
#   sudo scripts/test.sh [--scripts-only]
#
#   1. cargo fmt --check
#   2. cargo clippy --all-targets -- -D warnings; and --lib --bins without the internals feature
#   3. cargo test --release                            (as root: the suite includes AF_XDP/veth tests
#                                                       that create their own network namespaces)
#   4. cargo test (debug build: overflow checks on) of the engine's unit, scenario, simulation,
#      fuzz, datapath and wire tiers, so that an arithmetic overflow panics instead of wrapping
#   5. scripts: bash -n, the output parsers' tests, shellcheck, testbed up/down
#   (3 and 4 each build first, as a step of its own with its own time limit)
#   --scripts-only   step 5 only
#
# Nothing is skipped for want of a tool: a missing rustfmt, clippy or shellcheck is a failure that
# says how to install it, and the veth tests run with SYNACK_VETH_REQUIRED=1, so that a missing
# command (hping3, wrk, curl, ...; looked up on PATH) or missing root fails them with the reason.
# Only a kernel without AF_XDP or veth makes them skip; each skip prints "SKIP: test: reason",
# and the summary lists those lines. Every step runs, also after a failure, and has a time limit.
# Exit status 0 only if no step failed.
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
		sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
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

# For the summary: lines "SKIP: test: reason" that the tests printed (a kernel without a feature),
# and "test: first line of its panic message" for each failed test.
SKIPS=() PANICS=()
STEP_LOG=$(mktemp "${TMPDIR:-/tmp}/synack-test.XXXXXX")
trap 'rm -f "$STEP_LOG"' EXIT

# step NAME SECONDS CMD...: run CMD with a time limit (the whole process group is stopped at the
# limit), print its output as it comes, record PASS/FAIL/TIMEOUT and the SKIP lines it printed.
# CMD may be a function of this file (it is then run as `test.sh --internal FUNCTION ARGS`).
step() {
	local name=$1 limit=$2 t0 rc=0 state line
	shift 2
	printf '\n==== %s\n' "$name"
	t0=$(date +%s)
	if [[ $(type -t "$1") == function ]]; then
		timeout -k 10 "$limit" "$SELF" --internal "$@" 2>&1 | tee "$STEP_LOG"
	else
		timeout -k 10 "$limit" "$@" 2>&1 | tee "$STEP_LOG"
	fi
	rc=${PIPESTATUS[0]}
	case $rc in
	0) state=PASS ;;
	124 | 137) state="TIMEOUT (${limit}s)" ;;
	*) state="FAIL (status $rc)" ;;
	esac
	record "$name" "$state" "$(($(date +%s) - t0))s"
	while IFS= read -r line; do SKIPS+=("$line"); done < <(grep -a '^SKIP: ' "$STEP_LOG")
	while IFS= read -r line; do PANICS+=("$line"); done < <(panics "$STEP_LOG")
}
# panics LOG: "test: message" for each "thread 'test' ... panicked at ...:" line and the line after.
panics() {
	awk '/^thread .* panicked at / { split($0, q, "\047"); name = q[2]; getline msg;
		print (index(msg, name ": ") == 1 ? msg : name ": " msg) }' "$1"
}
# fail NAME REASON: a step that cannot run here; CI must not pass by leaving it out.
fail() {
	printf '\n==== %s\n(cannot run: %s)\n' "$1" "$2"
	record "$1" "FAIL ($2)" -
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
		echo "test.sh: note: not root; the tests that need root (AF_XDP, veth) will fail" >&2
	fi
	# tests/testbed/mod.rs REQUIRE_ENV: a missing command or root fails a veth test, never a skip.
	export SYNACK_VETH_REQUIRED=1
	if ! find_cargo >/dev/null; then
		run_cargo_here --version # prints how to install Rust
		record "cargo" "FAIL (cargo not found)" -
	else
		if cargo_step fmt --version >/dev/null 2>&1; then
			step "cargo fmt --check" 120 cargo_step fmt --check
		else
			fail "cargo fmt --check" "rustfmt not installed: rustup component add rustfmt"
		fi
		if cargo_step clippy --version >/dev/null 2>&1; then
			step "cargo clippy --all-targets -- -D warnings" 900 cargo_step clippy --all-targets -- -D warnings
			# The library and binary as users build them: without the `internals` feature (which
			# the tests' self dev-dependency turns on), so test-only code cannot hide dead code.
			step "cargo clippy --lib --bins -- -D warnings (no internals feature)" 900 \
				cargo_step clippy --lib --bins -- -D warnings
		else
			fail "cargo clippy --all-targets -- -D warnings" "clippy not installed: rustup component add clippy"
		fi
		# Builds are steps of their own, so that a test step's time limit is the tests' time.
		step "cargo test --release --no-run (build)" 1800 cargo_step test --release --no-run
		step "cargo test --release" 900 cargo_step test --release --no-fail-fast
		# The dev profile: overflow checks and debug assertions on. ~2 min to build, ~1 min to run
		# here; the veth tests stay release-only (they drive the binary, not the arithmetic).
		debug_tiers=(--lib --test tcp_states --test active_open --test scripts --test sim --test fuzz_engine --test datapath
			--test wire_frames)
		step "cargo test --no-run (build, debug)" 1800 cargo_step test "${debug_tiers[@]}" --no-run
		step "cargo test (debug: overflow checks) engine tiers" 600 cargo_step test --no-fail-fast "${debug_tiers[@]}"
	fi
fi

step "scripts: bash -n, py_compile" 60 syntax
step "scripts: output parser tests" 60 python3 "$ROOT/scripts/test_loadgen.py"
if command -v shellcheck >/dev/null 2>&1; then
	step "scripts: shellcheck" 120 lint
else
	fail "scripts: shellcheck" "shellcheck not installed: scripts/setup.sh --deps-only"
fi
missing=()
for c in ip curl; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
if [[ $(id -u) != 0 ]]; then
	fail "scripts: testbed up/down" "needs root"
elif ((${#missing[@]})); then
	fail "scripts: testbed up/down" "missing ${missing[*]}: scripts/setup.sh --deps-only"
else
	step "scripts: testbed up/down" 60 testbed_smoke
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
if ((${#PANICS[@]})); then
	printf '  failed tests:\n'
	printf '    %s\n' "${PANICS[@]}"
fi
if ((${#SKIPS[@]})); then
	printf '  skipped by the tests (the kernel lacks a feature):\n'
	printf '    %s\n' "${SKIPS[@]}"
fi
if ((failed)); then
	echo "test.sh: $failed step(s) failed"
	exit 1
fi
echo "test.sh: all steps passed"
