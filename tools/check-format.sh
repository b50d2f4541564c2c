#!/usr/bin/env bash
# check-format.sh: fails when a tracked C file differs from clang-format's
# output under the project's .clang-format, and lists those files.
set -u
cd "$(dirname "$0")/.."
bad=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null)
[ -n "$files" ] || files=$(find services proto gateway scheduler billing opsmon alerter webui tools tests -name '*.[ch]' -not -path '*/node_modules/*')
for f in $files; do
	[ -f "$f" ] || continue
	if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f"
		bad=$((bad + 1))
	fi
done
if [ $bad -ne 0 ]; then
	echo "$bad file(s) need 'make fmt'"
	exit 1
fi
echo "format ok"
