#!/usr/bin/env bash
# Runs a command with some tools hidden from PATH, to check that what needs them fails and names
# them (CI must not pass by skipping), without uninstalling anything or touching the system:
#
#   scripts/hide-tool.sh TOOL [TOOL...] -- COMMAND [ARGS...]
#   e.g. scripts/hide-tool.sh hping3 -- scripts/test.sh
#
# Each PATH directory that holds one of the tools is replaced, in the command's PATH, by a
# temporary directory of symbolic links to everything else in it. The temporary directories are
# removed at the end, also on failure or interruption. The exit status is the command's.
set -euo pipefail

tools=()
while (($#)) && [[ $1 != -- ]]; do
	tools+=("$1")
	shift
done
if ((${#tools[@]} == 0)) || (($# < 2)); then
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
shift # --

TMP=$(mktemp -d "${TMPDIR:-/tmp}/synack-hide.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

holds_tool() {
	local t
	for t in "${tools[@]}"; do [[ -e $1/$t ]] && return 0; done
	return 1
}
is_hidden() {
	local t
	for t in "${tools[@]}"; do [[ $1 == "$t" ]] && return 0; done
	return 1
}

new_path=() n=0
IFS=: read -r -a dirs <<<"${PATH:-}"
for d in "${dirs[@]}"; do
	[[ -n $d ]] || continue
	if [[ -d $d ]] && holds_tool "$d"; then
		n=$((n + 1))
		shadow="$TMP/$n"
		mkdir "$shadow"
		for f in "$d"/* "$d"/.[!.]*; do
			[[ -e $f ]] || continue
			is_hidden "${f##*/}" || ln -s "$f" "$shadow/"
		done
		new_path+=("$shadow")
	else
		new_path+=("$d")
	fi
done
PATH=$(
	IFS=:
	echo "${new_path[*]}"
)
export PATH
for t in "${tools[@]}"; do
	if command -v "$t" >/dev/null 2>&1; then
		echo "hide-tool: $t is still found at $(command -v "$t")" >&2
		exit 2
	fi
done
echo "hide-tool: hidden from PATH: ${tools[*]}" >&2
rc=0
"$@" || rc=$?
exit "$rc"
