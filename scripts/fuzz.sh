#!/usr/bin/env bash
# A short run of every fuzz target (see fuzz/README.md): FUZZ_SECONDS in total
# (default 60), split evenly; FUZZ_SECONDS=0 skips fuzzing. Installs cargo-fuzz
# when missing. Builds every target in one instrumented build, kept in
# target/fuzz so a CI cache of target/ keeps it too.
set -euo pipefail
cd "$(dirname "$0")/.."

total="${FUZZ_SECONDS:-60}"
if [ "$total" -eq 0 ]; then
  echo "==> fuzz: skipped (FUZZ_SECONDS=0)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
# cargo-fuzz needs nightly flags (-Zsanitizer); the stable toolchain accepts them so.
export RUSTC_BOOTSTRAP=1
target_dir="$PWD/target/fuzz"
targets=(csv_reader sheet_reader mapping config)

start=$(date +%s)
echo "==> cargo fuzz build (all targets)"
(cd fuzz && cargo fuzz build --target-dir "$target_dir" >/dev/null)
echo "    built in $(( $(date +%s) - start )) s"

per=$(( total / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  # New inputs go to a scratch corpus; the seeds in fuzz/corpus are only read.
  mkdir -p "$work/$t" "fuzz/artifacts/$t"
  echo "==> fuzz $t for ${per} s"
  if ! (cd fuzz && cargo fuzz run "$t" --target-dir "$target_dir" "$work/$t" "corpus/$t" -- \
        -max_total_time="$per" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$work/$t.log" 2>&1); then
    tail -n 40 "$work/$t.log" >&2
    echo "error: fuzz target $t failed; the input is in fuzz/artifacts/$t/ (see fuzz/README.md)" >&2
    exit 1
  fi
  grep -E "^(INFO: Seed|stat::number_of_executed_units)" "$work/$t.log" | sed 's/^/    /'
done
echo "==> fuzz: every target ran $per s without a crash ($(( $(date +%s) - start )) s in all)"
