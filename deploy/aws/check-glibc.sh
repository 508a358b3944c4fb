#!/usr/bin/env bash
# The Lambda image runs on Amazon Linux 2023 (glibc 2.34) a binary built on Debian: it must not ask for a newer
# glibc symbol version, or it would not start there. Usage: deploy/aws/check-glibc.sh BINARY [MAX_VERSION]
set -euo pipefail
bin="${1:?usage: $0 BINARY [MAX_VERSION]}"
max="${2:-2.34}"
command -v objdump >/dev/null || { echo "objdump is required (binutils)" >&2; exit 1; }
[ -f "$bin" ] || { echo "$bin: no such file" >&2; exit 1; }
needed="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)"
[ -n "$needed" ] || { echo "$bin: no glibc symbol versions (not a dynamic glibc binary?)" >&2; exit 1; }
if [ "$(printf '%s\n%s\n' "$needed" "$max" | sort -V | tail -n 1)" != "$max" ]; then
    echo "$bin needs glibc $needed, newer than $max:" >&2
    objdump -T "$bin" | grep -E "GLIBC_$needed\b" >&2
    exit 1
fi
echo "$bin: glibc $needed at most (<= $max)" >&2
