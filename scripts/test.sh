#!/usr/bin/env bash
# Runs every check and test. Installs what is missing first, so it works on a
# fresh machine (and in CI, where CI=true makes a missing PostgreSQL fatal).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: slapd and ldap-utils for the directory tests, chromium for the console's.
missing=()
[ -x /usr/sbin/slapd ] || command -v slapd >/dev/null 2>&1 || missing+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || missing+=(ldap-utils)
command -v pg_isready >/dev/null 2>&1 || missing+=(postgresql-client)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3 python3-pip)
# Chromium and its WebDriver for the web console's browser tests.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Python's aiosmtpd: the SMTP server the notification tests start.
if ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
  echo "==> installing aiosmtpd"
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# The store tests run on SQLite and on PostgreSQL; PostgreSQL is not optional.
export CHORUS_SYNC_TEST_PG="${CHORUS_SYNC_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
if ! pg_isready -q -d "$CHORUS_SYNC_TEST_PG" -t 10; then
  echo "error: PostgreSQL is not reachable at $CHORUS_SYNC_TEST_PG (set CHORUS_SYNC_TEST_PG)" >&2
  exit 1
fi

echo "==> cargo fmt --all --check"
cargo fmt --all --check
echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test"
cargo test --quiet --workspace --all-targets
# A minute of fuzzing in all (FUZZ_SECONDS to change, 0 skips).
scripts/fuzz.sh
echo "==> all checks passed"
