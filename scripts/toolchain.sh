# shellcheck shell=bash
# Where the scripts find their tools: cargo, the synack binary, xgen. Sourced, not run.
# Expects ROOT (the repository root) to be set by the caller.

: "${ROOT:?ROOT must be set before sourcing toolchain.sh}"

# xgen's sources: $XGEN_DIR if set, else ../shared/tools/xgen beside the repository, else the
# machine-wide copy on the development machines.
XGEN_CANDIDATES=()
if [[ -n ${XGEN_DIR:-} ]]; then
	XGEN_CANDIDATES=("$XGEN_DIR")
else
	XGEN_CANDIDATES=("$ROOT/../shared/tools/xgen" /work/shared/tools/xgen)
fi

# xgen_source_dir: print the first candidate directory that holds xgen.c.
xgen_source_dir() {
	local d
	for d in "${XGEN_CANDIDATES[@]}"; do
		if [[ -f $d/xgen.c ]]; then
			(cd "$d" && pwd)
			return 0
		fi
	done
	return 1
}

# xgen_binary: print the path of a runnable xgen ($XGEN, target/xgen/xgen, then a prebuilt one in
# the source directory), or fail with the reason on stderr.
xgen_binary() {
	local d
	if [[ -n ${XGEN:-} ]]; then
		[[ -x $XGEN ]] && {
			printf '%s\n' "$XGEN"
			return 0
		}
		echo "XGEN=$XGEN is not an executable file" >&2
		return 1
	fi
	if [[ -x $ROOT/target/xgen/xgen ]]; then
		printf '%s\n' "$ROOT/target/xgen/xgen"
		return 0
	fi
	for d in "${XGEN_CANDIDATES[@]}"; do
		if [[ -x $d/xgen ]]; then
			printf '%s\n' "$d/xgen"
			return 0
		fi
	done
	if xgen_source_dir >/dev/null; then
		echo "xgen is not built: run scripts/setup.sh (it builds target/xgen/xgen)" >&2
	else
		echo "xgen not found (set XGEN_DIR to its source directory, or XGEN to a binary)" >&2
	fi
	return 1
}

# synack_binary: print the path of the synack binary ($SYNACK or target/release/synack), or fail
# with a message that says how to get one.
synack_binary() {
	local b=${SYNACK:-$ROOT/target/release/synack}
	if [[ -x $b ]]; then
		printf '%s\n' "$b"
		return 0
	fi
	echo "synack binary not found at $b: build it with 'cargo build --release' (or scripts/setup.sh)," \
		"or point SYNACK at one" >&2
	return 1
}

# find_cargo: print the path of cargo: $CARGO, PATH, ~/.cargo/bin, or the invoking sudo user's.
find_cargo() {
	local c home
	if [[ -n ${CARGO:-} && -x $CARGO ]]; then
		printf '%s\n' "$CARGO"
		return 0
	fi
	if c=$(command -v cargo 2>/dev/null); then
		printf '%s\n' "$c"
		return 0
	fi
	for home in "${HOME:-/root}" "$(sudo_user_home)"; do
		[[ -n $home && -x $home/.cargo/bin/cargo ]] || continue
		printf '%s\n' "$home/.cargo/bin/cargo"
		return 0
	done
	return 1
}

sudo_user_home() {
	[[ -n ${SUDO_USER:-} && $SUDO_USER != root ]] || return 0
	getent passwd "$SUDO_USER" | cut -d: -f6
}

# run_cargo ARGS...: run cargo in the repository (for builds). Under sudo, when the checkout belongs
# to the user who ran sudo, cargo runs as that user, so target/ does not end up owned by root.
run_cargo() { cargo_in_repo build-as-owner "$@"; }

# run_cargo_here ARGS...: run cargo as the current user (tests: the integration tests need root).
run_cargo_here() { cargo_in_repo self "$@"; }

cargo_in_repo() {
	local how=$1 cargo bindir home
	shift
	if ! cargo=$(find_cargo); then
		echo "cargo not found. synack needs Rust 1.95 (stable), e.g.:" >&2
		echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain 1.95.0" >&2
		return 1
	fi
	bindir=$(dirname "$cargo")
	if [[ $how == build-as-owner && $(id -u) == 0 && -n ${SUDO_USER:-} && $SUDO_USER != root &&
		$(stat -c %U "$ROOT") == "$SUDO_USER" ]] && command -v sudo >/dev/null 2>&1; then
		(cd "$ROOT" && sudo -u "$SUDO_USER" -H env "PATH=$bindir:$PATH" "$cargo" "$@")
		return
	fi
	# A rustup cargo found in another user's home needs that home's toolchains.
	home=${bindir%/.cargo/bin}
	if [[ $home != "$bindir" && $home != "${HOME:-}" && -d $home/.rustup ]]; then
		(cd "$ROOT" && RUSTUP_HOME=${RUSTUP_HOME:-$home/.rustup} CARGO_HOME=${CARGO_HOME:-$home/.cargo} \
			PATH="$bindir:$PATH" "$cargo" "$@")
		return
	fi
	(cd "$ROOT" && PATH="$bindir:$PATH" "$cargo" "$@")
}
