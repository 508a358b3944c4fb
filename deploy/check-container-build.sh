#!/usr/bin/env bash
# Checks the Dockerfile's build stage without a container engine: copies exactly what its COPY lines copy into
# an empty directory, runs its RUN lines there, and runs the binary its ENTRYPOINT names on the example files.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The build stage: from the first FROM to the second.
stage="$(awk '/^FROM /{n++} n==1' "$root/Dockerfile")"
workdir="$(printf '%s\n' "$stage" | awk '$1=="WORKDIR"{print $2}' | tail -1)"
[ -n "$workdir" ] || { echo "no WORKDIR in the build stage" >&2; exit 1; }
ctx="$work$workdir"
mkdir -p "$ctx"

while read -r instr args; do
    case $instr in
        COPY)
            # COPY SRC... DEST (DEST relative to WORKDIR)
            read -ra parts <<<"$args"
            dest="${parts[-1]}"
            unset 'parts[-1]'
            for src in "${parts[@]}"; do
                if [ "${#parts[@]}" -gt 1 ] || [ "${dest: -1}" = "/" ]; then
                    mkdir -p "$ctx/$dest"
                    cp -R "$root/$src" "$ctx/$dest"
                else
                    mkdir -p "$(dirname "$ctx/$dest")"
                    cp -R "$root/$src" "$ctx/$dest"
                fi
            done ;;
        RUN)
            # Packages the build stage installs are installed here by CI beforehand; skip when present.
            if [[ $args == apt-get* ]] && command -v cmake >/dev/null && command -v nasm >/dev/null; then
                echo "(skipped, cmake and nasm are here) $args" >&2
                continue
            fi
            echo "+ $args" >&2
            # Reuse a target directory between checks when one is given, as a container layer cache would.
            (cd "$ctx" && CARGO_TARGET_DIR="${CHECK_TARGET_DIR:-$ctx/target}" bash -c "$args") ;;
    esac
done < <(printf '%s\n' "$stage" | grep -E '^(COPY|RUN) ')

# The run stage is the last (the default target); it copies target/release/iiif-process to the ENTRYPOINT path.
run_stage="$(awk '/^FROM /{buf=""} {buf=buf $0 ORS} END{printf "%s", buf}' "$root/Dockerfile")"
entry="$(printf '%s\n' "$run_stage" | awk '/^ENTRYPOINT/' | sed -E 's/.*\["([^"]+)".*/\1/')"
copied="$(printf '%s\n' "$run_stage" | awk '/^COPY --from=build /{print $3}')"
bin="${CHECK_TARGET_DIR:-$ctx/target}/${copied#"$workdir"/target/}"
[ -x "$bin" ] || { echo "the build stage did not produce $copied" >&2; exit 1; }
echo "entrypoint $entry <- $copied" >&2
"$bin" --version
out="$(mktemp -d)"
sed "s#\"path\": \"out\"#\"path\": \"$out\"#" "$root/config.example.json" > "$work/config.json"
# Sources resolve against the config's directory: point them at the repo's examples.
sed -i "s#\"path\": \"examples\"#\"path\": \"$root/examples\"#" "$work/config.json"
"$bin" -quiet -config "$work/config.json" -instructions "$root/instructions.example.json" \
    -uri source/IMG_0084.JPG > "$work/report.json"
grep -q '"source/IMG_0084.JPG"' "$work/report.json"
rm -rf "$out"
echo "container build check: ok" >&2
