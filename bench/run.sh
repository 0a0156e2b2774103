#!/usr/bin/env bash
# One command per benchmark workload (issue 7, DESIGN §10). Builds the release
# binary and examples, generates data under target/bench/, measures wall time
# and peak RSS with /usr/bin/time, and prints ratios.
#
#   bench/run.sh WORKLOAD [SIZE]
#
# WORKLOAD: xlsx | steady | csv | ldap | run | approvals | python | daemon | scaling | formats | adoption | import | all
# SIZE: HR rows (defaults: 1000000 for xlsx/csv, 100000 for ldap/run/python).
# REPEAT=n (default 5): the two commands of a ratio are interleaved n times and
# the medians compared, so a load change on the shared machine hits both.
# Each ratio row gives wall time, CPU time (user + system) and peak RSS of both
# sides, then the wall-time ratio and the CPU-time ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/target/bench
BIN=$ROOT/target/release/chorus-sync
GEN=$ROOT/target/release/examples/gen
BARE=$ROOT/target/release/examples/bare
REPEAT=${REPEAT:-5}
PG=${CHORUS_SYNC_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}
export CHORUS_SYNC_NOW=2026-11-23T08:00:00Z
mkdir -p "$BENCH"

log() { printf '==> %s\n' "$*" >&2; }

# Debian packages the workloads call (as scripts/test.sh installs its own).
deps() {
  local missing=()
  [ -x /usr/sbin/slapd ] || missing+=(slapd)
  command -v ldapsearch >/dev/null 2>&1 || missing+=(ldap-utils)
  command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  [ -x /usr/bin/time ] || missing+=(time)
  [ "${#missing[@]}" -eq 0 ] && return
  log "installing ${missing[*]}"
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  [ -n "${NO_BUILD:-}" ] && return
  log "cargo build --release (binary and examples)"
  cargo build --release --quiet --bin chorus-sync --example gen --example bare
}

# data SIZE [FORMATS] [STRUCTURES] -> prints the directory; generated once.
data() {
  local size=$1 formats=${2:-xlsx,csv} structures=${3:-8}
  local dir=$BENCH/data-$size-s$structures
  mkdir -p "$dir"
  local stamp="$dir/.made-$formats"
  if [ ! -e "$stamp" ]; then
    log "generating $size rows ($formats) into $dir"
    "$GEN" --rows "$size" --out "$dir" --structures "$structures" --formats "$formats" >&2
    touch "$stamp"
  fi
  if [ ! -e "$dir/store.db" ]; then
    (cd "$dir" && "$BIN" -q import-current portal.csv >/dev/null)
  fi
  echo "$dir"
}

# measure FILE CMD...: appends "wall_s maxrss_kb user_s sys_s" of one run to FILE.
# CPU time is reported beside wall time: on a shared machine it is the steadier
# of the two.
measure() {
  local file=$1
  shift
  /usr/bin/time -f '%e %M %U %S' -o "$file.last" "$@" >/dev/null 2>"$file.err" || {
    log "failed: $*"
    cat "$file.err" >&2
    return 1
  }
  cat "$file.last" >>"$file"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { awk -v c="$1" '{print $c}' "$2"; }
cpu() { awk '{print $3 + $4}' "$1"; }
max_rss_mb() { col 2 "$1" | sort -n | tail -1 | awk '{printf "%.0f", $1/1024}'; }

# ratio NAME TARGET A-LABEL B-LABEL: compares the medians of $T/a and $T/b.
ratio() {
  local name=$1 target=$2 alabel=$3 blabel=$4
  local ta tb ca cb
  ta=$(col 1 "$T/a" | median)
  tb=$(col 1 "$T/b" | median)
  ca=$(cpu "$T/a" | median)
  cb=$(cpu "$T/b" | median)
  printf '| %s | %s %.2fs wall, %.2fs CPU, %s MB | %s %.2fs wall, %.2fs CPU, %s MB | %.2f× | %.2f× | %s |\n' "$name" \
    "$alabel" "$ta" "$ca" "$(max_rss_mb "$T/a")" "$blabel" "$tb" "$cb" "$(max_rss_mb "$T/b")" \
    "$(echo "$ta $tb" | awk '{print ($2 > 0 ? $1/$2 : 0)}')" "$(echo "$ca $cb" | awk '{print ($2 > 0 ? $1/$2 : 0)}')" "$target"
}

# interleave CMD-A -- CMD-B: REPEAT rounds of A then B.
interleave() {
  local a=() b=() seen=
  for x in "$@"; do
    if [ "$x" = "--" ] && [ -z "$seen" ]; then seen=1; continue; fi
    if [ -z "$seen" ]; then a+=("$x"); else b+=("$x"); fi
  done
  : >"$T/a"
  : >"$T/b"
  for _ in $(seq "$REPEAT"); do
    measure "$T/a" "${a[@]}"
    measure "$T/b" "${b[@]}"
  done
}

load() { printf 'load average during the run: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"; }

plan() { "$BIN" -q plan --out "$T/plan-out"; }

workload_xlsx() {
  local dir
  dir=$(data "${1:-1000000}")
  cd "$dir"
  interleave "$BIN" -q plan --out "$T/plan-out" -- "$BARE" hr.xlsx
  ratio "xlsx $(basename "$dir"): plan vs bare calamine" "≤ 1.3×, RSS < 250 MB" plan bare
  cd "$ROOT"
}

# The steady state of a daemon: the same xlsx plan after one `run` has
# recorded every employee id and left ~5% of the people as pending requests.
workload_steady() {
  local dir size=${1:-1000000}
  dir=$(data "$size")
  local steady=$BENCH/steady-$size
  if [ ! -e "$steady/.made" ]; then
    log "one run on a copy of $dir's store (records the ids, raises the requests)"
    rm -rf "$steady"
    mkdir -p "$steady"
    cp "$dir/store.db" "$steady/"
    for f in hr.xlsx chorus-sync.toml; do ln -s "$dir/$f" "$steady/$f"; done
    (cd "$steady" && "$BIN" -q run --force --out "$T/run-out" >/dev/null)
    touch "$steady/.made"
  fi
  cd "$steady"
  interleave "$BIN" -q plan --out "$T/plan-out" -- "$BARE" hr.xlsx
  ratio "xlsx $size rows after a run: plan vs bare calamine" "≤ 1.3×, RSS < 250 MB" plan bare
  # A daily run rarely sees no address change (a marriage, a typo fixed).
  # The same state with 20 of the recorded addresses changed since: each id
  # now holds the next id's address, which is still attached, so the plan
  # reports 20 `email_changed` and leaves both addresses alone.
  local moved=$BENCH/steady-$size-moved
  if [ ! -e "$moved/.made" ]; then
    rm -rf "$moved"
    mkdir -p "$moved"
    cp store.db "$moved/"
    for f in hr.xlsx chorus-sync.toml; do ln -s "$dir/$f" "$moved/$f"; done
    sqlite3 "$moved/store.db" "UPDATE identities SET email = (SELECT n.email FROM identities AS n WHERE n.rowid = identities.rowid + 1) \
      WHERE rowid IN (SELECT rowid FROM identities ORDER BY rowid LIMIT 20 OFFSET $((size / 3)))"
    touch "$moved/.made"
  fi
  cd "$moved"
  interleave "$BIN" -q plan --out "$T/plan-out" -- "$BARE" hr.xlsx
  ratio "xlsx $size rows after a run, 20 addresses changed since: plan vs bare calamine" "≤ 1.3×, RSS < 250 MB" plan bare
  cd "$ROOT"
}

workload_csv() {
  local dir
  dir=$(data "${1:-1000000}")
  cd "$dir"
  interleave env CHORUS_SYNC__SOURCES__0__PATH=hr.csv "$BIN" -q plan --out "$T/plan-out" -- "$BARE" hr.csv
  ratio "csv $(basename "$dir"): plan vs bare csv crate" "≤ 1.5×" plan bare
  # A plan reads two inputs: the file and the portal's current state in the
  # store. The bare read of both, one after the other (sqlite3's own dump of
  # the current attachments), puts the row above in context; it does not
  # replace it.
  interleave env CHORUS_SYNC__SOURCES__0__PATH=hr.csv "$BIN" -q plan --out "$T/plan-out" \
    -- sh -c '"$1" hr.csv && sqlite3 store.db "SELECT * FROM current_attachments"' sh "$BARE"
  ratio "csv $(basename "$dir"): plan vs bare csv crate + sqlite3 dump of the current attachments" "- (context)" plan both
  cd "$ROOT"
}

# A throwaway slapd loaded with the generated LDIF (as tests/it/slapd.rs does).
start_slapd() {
  local dir=$1 ldif=$2
  local d=$T/slapd
  rm -rf "$d"
  mkdir -p "$d/db"
  {
    for s in core cosine inetorgperson nis; do echo "include /etc/ldap/schema/$s.schema"; done
    echo "modulepath /usr/lib/ldap"
    echo "moduleload back_mdb"
    echo "pidfile $d/slapd.pid"
    echo "database mdb"
    echo "maxsize 4294967296"
    echo "suffix \"dc=example,dc=org\""
    echo "rootdn \"cn=admin,dc=example,dc=org\""
    echo "rootpw admin"
    echo "directory $d/db"
    echo "index objectClass,mail eq"
    echo "access to attrs=userPassword by anonymous auth by * none"
    echo "access to * by * read"
    # Paged searches only, as a production directory would insist on.
    echo "limits * size.soft=1000 size.hard=1000 size.pr=500 size.prtotal=unlimited"
  } >"$d/slapd.conf"
  log "slapadd $(grep -c '^dn:' "$ldif") entries"
  /usr/sbin/slapadd -q -f "$d/slapd.conf" -l "$ldif"
  LDAP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  /usr/sbin/slapd -f "$d/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/" -d 0 >/dev/null 2>&1 &
  SLAPD_PID=$!
  for _ in $(seq 100); do
    ldapsearch -x -H "ldap://127.0.0.1:$LDAP_PORT" -b "" -s base >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "slapd did not start"
  return 1
}

stop_slapd() { [ -n "${SLAPD_PID:-}" ] && kill "$SLAPD_PID" 2>/dev/null && wait "$SLAPD_PID" 2>/dev/null || true; }

workload_ldap() {
  local dir size=${1:-100000}
  dir=$(data "$size" ldif 1)
  start_slapd "$dir" "$dir/annuaire.ldif"
  cd "$dir"
  export LDAP_PW=bench-secret
  interleave env CHORUS_SYNC_CONFIG=chorus-sync-ldap.toml CHORUS_SYNC__SOURCES__0__URL="ldap://127.0.0.1:$LDAP_PORT" \
    "$BIN" -q plan --out "$T/plan-out" -- \
    ldapsearch -x -LLL -H "ldap://127.0.0.1:$LDAP_PORT" -D cn=chorus-sync,ou=apps,dc=example,dc=org -w "$LDAP_PW" \
    -b ou=people,dc=example,dc=org -E pr=500/noprompt "(&(objectClass=inetOrgPerson)(mail=*))"
  ratio "ldap $size entries: plan vs ldapsearch -E pr=500" "≤ 1.3×" plan ldapsearch
  cd "$ROOT"
  stop_slapd
}

# A fresh PostgreSQL schema holding the imported portal export; prints its URL.
# new_pg_schema -> prints the store URL of a fresh, empty schema (dropped at exit).
new_pg_schema() {
  local schema=bench_$$_$RANDOM
  psql -q "$PG" -c "CREATE SCHEMA $schema" >/dev/null
  echo "$schema" >>"$T/pg-schemas"
  echo "$PG?options=-c%20search_path%3D$schema"
}

pg_store() {
  local dir=$1 url
  url=$(new_pg_schema)
  (cd "$dir" && CHORUS_SYNC__STORE__URL=$url "$BIN" -q import-current portal.csv >/dev/null)
  echo "$url"
}

drop_pg_schemas() {
  [ -e "$T/pg-schemas" ] || return 0
  while read -r s; do psql -q "$PG" -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done <"$T/pg-schemas"
  rm -f "$T/pg-schemas"
}

workload_run() {
  local dir size=${1:-100000}
  dir=$(data "$size")
  cd "$dir"
  # run changes the store: every round starts from a fresh copy of the
  # imported store (the copy is not timed); plan runs on the same kind of copy.
  : >"$T/a"
  : >"$T/b"
  for _ in $(seq "$REPEAT"); do
    cp store.db "$T/run.db"
    rm -f "$T/run.db-wal" "$T/run.db-shm"
    measure "$T/a" env CHORUS_SYNC__STORE__URL="sqlite://$T/run.db" "$BIN" -q run --out "$T/run-out"
    cp store.db "$T/plan.db"
    measure "$T/b" env CHORUS_SYNC__STORE__URL="sqlite://$T/plan.db" "$BIN" -q plan --out "$T/plan-out"
  done
  ratio "run vs plan, $size rows, 5% churn, SQLite" "≤ 2×" run plan
  : >"$T/a"
  : >"$T/b"
  for _ in $(seq "$REPEAT"); do
    local url
    url=$(pg_store "$dir")
    measure "$T/a" env CHORUS_SYNC__STORE__URL="$url" "$BIN" -q run --out "$T/run-out"
    url=$(pg_store "$dir")
    measure "$T/b" env CHORUS_SYNC__STORE__URL="$url" "$BIN" -q plan --out "$T/plan-out"
    drop_pg_schemas
  done
  ratio "run vs plan, $size rows, 5% churn, PostgreSQL" "≤ 2×" run plan
  cd "$ROOT"
}

# A first adoption (not one of the issue's workloads; BENCHMARKS.md, session
# 14): a portal holding one attachment per structure, so the first run raises
# a request per person, then the next plan with all of them in the managers'
# queues, as every day until they are worked through. SQLite; ADOPTION_REPEAT
# rounds (default 1: ~1.5 min at a million rows), each from a fresh store.
workload_adoption() {
  local dir size=${1:-1000000}
  dir=$(data "$size")
  cd "$dir"
  # The header and the first attachment of each structure (4th column).
  (head -n 1 portal.csv && awk -F';' 'NR > 1 && !seen[$4]++' portal.csv) >"$T/portal-one.csv"
  rm -f "$T/adopt.db"*
  CHORUS_SYNC__STORE__URL="sqlite://$T/adopt.db" "$BIN" -q import-current "$T/portal-one.csv" >/dev/null
  : >"$T/a"
  : >"$T/b"
  for _ in $(seq "${ADOPTION_REPEAT:-1}"); do
    cp "$T/adopt.db" "$T/run.db"
    rm -f "$T/run.db-wal" "$T/run.db-shm"
    measure "$T/a" env CHORUS_SYNC__STORE__URL="sqlite://$T/run.db" "$BIN" -q run --force --out "$T/run-out"
    measure "$T/b" env CHORUS_SYNC__STORE__URL="sqlite://$T/run.db" "$BIN" -q plan --out "$T/plan-out"
  done
  printf '| first adoption, %s rows, SQLite (%s requests) | run --force %.2fs wall, %.2fs CPU, %s MB | the plan after it %.2fs wall, %.2fs CPU, %s MB |\n' \
    "$size" "$(($(wc -l <"$T/run-out/changes.csv") - 1))" \
    "$(col 1 "$T/a" | median)" "$(cpu "$T/a" | median)" "$(max_rss_mb "$T/a")" \
    "$(col 1 "$T/b" | median)" "$(cpu "$T/b" | median)" "$(max_rss_mb "$T/b")"
  cd "$ROOT"
}

# Adds N requests to a store, copied from one a real run raised: structure X
# gets the same 1,000 pending ones at every size (plus the run's own), the
# rest are decided or belong to other structures, so the listing is the same
# at every size and a flat time means the query is indexed.
fill_requests() {
  local backend=$1 url=$2 n=$3
  local cols="run_id, state, kind, structure, email, before_present, before_service, before_rights, after_present,
    after_service, after_rights, last_name, first_name, reason, reason_category, description, requester,
    structure_name, manager, origin, created_at, decided_by, decided_at, motive, comment"
  local pick="run_id, CASE WHEN i < 8000 THEN 'pending' WHEN i % 3 = 0 THEN 'applied' WHEN i % 3 = 1 THEN 'refused'
    ELSE 'superseded' END, kind, (SELECT identifier FROM bench_structures WHERE k = i % 8), 'p' || i || '@bench.fr',
    before_present, before_service, before_rights, after_present, after_service, after_rights, last_name, first_name,
    reason, reason_category, description, requester, structure_name, manager, origin, created_at,
    CASE WHEN i >= 8000 THEN 'gp@bench.fr' END, CASE WHEN i >= 8000 THEN created_at END, NULL, NULL"
  local structures
  structures=$(python3 -c "import json; print(','.join(\"(%d,'%s')\" % ks for ks in enumerate(json.load(open('expected.json'))['structures'])))")
  if [ "$backend" = sqlite ]; then
    sqlite3 "$url" <<SQL
CREATE TEMP TABLE bench_structures (k INTEGER, identifier TEXT);
INSERT INTO bench_structures VALUES $structures;
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < $n)
INSERT INTO requests ($cols) SELECT $pick FROM seq, (SELECT * FROM requests LIMIT 1);
ANALYZE;
SQL
  else
    psql -q "$url" <<SQL
CREATE TEMP TABLE bench_structures (k INTEGER, identifier TEXT);
INSERT INTO bench_structures VALUES $structures;
INSERT INTO requests ($cols) SELECT $pick FROM generate_series(0, $n - 1) AS i, (SELECT * FROM requests LIMIT 1) r;
ANALYZE;
SQL
  fi
}

workload_approvals() {
  local dir
  dir=$(data 10000)
  cd "$dir"
  local x
  x=$(python3 -c 'import json; print(json.load(open("expected.json"))["structures"][0])')
  echo "| requests in the store | SQLite: list --structure X --state pending | PostgreSQL | rows listed |"
  echo "|---|---|---|---|"
  for n in 10000 100000 1000000; do
    # A real run first, so the copied request and its run are genuine.
    cp store.db "$T/req.db"
    rm -f "$T/req.db-wal" "$T/req.db-shm"
    CHORUS_SYNC__STORE__URL="sqlite://$T/req.db" "$BIN" -q run --out "$T/run-out" >/dev/null
    fill_requests sqlite "$T/req.db" "$n"
    local url
    url=$(pg_store "$dir")
    CHORUS_SYNC__STORE__URL="$url" "$BIN" -q run --out "$T/run-out" >/dev/null
    fill_requests pg "$url" "$n"
    : >"$T/a"
    : >"$T/b"
    for _ in $(seq "$REPEAT"); do
      measure "$T/a" env CHORUS_SYNC__STORE__URL="sqlite://$T/req.db" "$BIN" -q approvals list --structure "$x" --state pending --format csv
      measure "$T/b" env CHORUS_SYNC__STORE__URL="$url" "$BIN" -q approvals list --structure "$x" --state pending --format csv
    done
    local rows
    rows=$(CHORUS_SYNC__STORE__URL="sqlite://$T/req.db" "$BIN" -q approvals list --structure "$x" --state pending --format csv | tail -n +2 | wc -l)
    printf '| %s | %.3fs | %.3fs | %s |\n' "$n" "$(col 1 "$T/a" | median)" "$(col 1 "$T/b" | median)" "$rows"
    drop_pg_schemas
  done
  cd "$ROOT"
}

venv() {
  local v=$BENCH/venv
  if [ ! -x "$v/bin/python" ] || ! "$v/bin/python" -c 'import pandas, python_calamine, openpyxl, odf, xlwt' 2>/dev/null; then
    log "pip install pandas python-calamine openpyxl odfpy xlwt into $v"
    python3 -m venv "$v"
    "$v/bin/pip" install -q pandas python-calamine openpyxl odfpy xlwt
  fi
  echo "$v/bin/python"
}

workload_python() {
  local dir size=${1:-100000} py
  py=$(venv)
  dir=$(data "$size")
  cd "$dir"
  log "python baseline finds: $("$py" "$ROOT/bench/baselines/sync.py" --engine calamine hr.xlsx portal.csv chorus-sync.toml "$T/py-out")"
  log "expected:              $(tr -d '\n ' <expected.json)"
  interleave "$py" "$ROOT/bench/baselines/sync.py" --engine calamine hr.xlsx portal.csv chorus-sync.toml "$T/py-out" \
    -- "$BIN" -q plan --out "$T/plan-out"
  ratio "$size rows: pandas + python-calamine vs plan" "≥ 5×" pandas-calamine plan
  # python-calamine parses with the same calamine as the bare read: the
  # script against that read is the most the ratio above could reach.
  interleave "$py" "$ROOT/bench/baselines/sync.py" --engine calamine hr.xlsx portal.csv chorus-sync.toml "$T/py-out" \
    -- "$BARE" hr.xlsx
  ratio "$size rows: pandas + python-calamine vs bare calamine read (the ceiling of the row above)" "-" pandas-calamine bare
  local keep=$REPEAT
  REPEAT=${PY_OPENPYXL_REPEAT:-1}
  interleave "$py" "$ROOT/bench/baselines/sync.py" --engine openpyxl hr.xlsx portal.csv chorus-sync.toml "$T/py-out" \
    -- "$BIN" -q plan --out "$T/plan-out"
  REPEAT=$keep
  ratio "$size rows: pandas + openpyxl vs plan" "≥ 20×" pandas-openpyxl plan
  cd "$ROOT"
}

# The daemon between runs: one scheduled run shortly after start, then a
# minute of idling; CPU from /proc (utime+stime), RSS from VmRSS.
workload_daemon() {
  local dir size=${1:-100000}
  dir=$(data "$size")
  cd "$dir"
  local at
  cp store.db "$T/daemon.db"
  at=$(date -u -d '+15 seconds' '+%S %M %H')
  env -u CHORUS_SYNC_NOW CHORUS_SYNC__TIMEZONE=UTC CHORUS_SYNC__SOURCES__0__SCHEDULE="$at * * *" \
    CHORUS_SYNC__STORE__URL="sqlite://$T/daemon.db" "$BIN" daemon >"$T/daemon.log" 2>&1 &
  local pid=$! tick
  tick=$(getconf CLK_TCK)
  sleep 5
  local rss0
  rss0=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  sleep 25 # the scheduled run happens here
  local hwm cpu0 cpu1 rss1
  cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  sleep 60
  cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  rss1=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM "$pid"
  wait "$pid" || true
  printf '| daemon, %s rows | idle RSS before the run %s MB, after %s MB (peak %s MB) | CPU over 60 s idle: %s s |\n' \
    "$size" "$((rss0 / 1024))" "$((rss1 / 1024))" "$((hwm / 1024))" "$(echo "$cpu0 $cpu1 $tick" | awk '{print ($2-$1)/$3}')"
  log "daemon log: $(tail -n 5 "$T/daemon.log")"
  cd "$ROOT"
}

workload_scaling() {
  echo "| rows | xlsx plan | xlsx peak RSS | csv plan | csv peak RSS | bare xlsx | bare csv |"
  echo "|---|---|---|---|---|---|---|"
  for n in 10000 100000 1000000; do
    local dir
    dir=$(data "$n")
    cd "$dir"
    interleave "$BIN" -q plan --out "$T/plan-out" -- env CHORUS_SYNC__SOURCES__0__PATH=hr.csv "$BIN" -q plan --out "$T/plan-out"
    cp "$T/a" "$T/xa"
    cp "$T/b" "$T/xb"
    interleave "$BARE" hr.xlsx -- "$BARE" hr.csv
    printf '| %s | %.2fs | %s MB | %.2fs | %s MB | %.2fs | %.2fs |\n' "$n" "$(col 1 "$T/xa" | median)" "$(max_rss_mb "$T/xa")" \
      "$(col 1 "$T/xb" | median)" "$(max_rss_mb "$T/xb")" "$(col 1 "$T/a" | median)" "$(col 1 "$T/b" | median)"
    cd "$ROOT"
  done
}

# plan on every supported format of the same data (ods and xls converted by
# bench/convert.py; xls only up to its 65,536 rows).
workload_formats() {
  local dir size=${1:-10000} py
  py=$(venv)
  dir=$(data "$size" xlsx,csv,csv1252,ods,xls)
  [ -e "$dir/hr.ods" ] || "$py" "$ROOT/bench/convert.py" "$dir" ods xls >&2
  cd "$dir"
  echo "| format, $size rows | plan | peak RSS |"
  echo "|---|---|---|"
  for f in hr.xlsx hr.csv hr-1252.csv hr.ods hr.xls; do
    [ -e "$f" ] || { echo "| $f | not generated | |"; continue; }
    : >"$T/a"
    for _ in $(seq "$REPEAT"); do measure "$T/a" env CHORUS_SYNC__SOURCES__0__PATH="$f" "$BIN" -q plan --out "$T/plan-out"; done
    printf '| %s | %.2fs | %s MB |\n' "$f" "$(col 1 "$T/a" | median)" "$(max_rss_mb "$T/a")"
  done
  cd "$ROOT"
}

# import-current of the generated portal export (a million attachments at
# the default size) into an empty store, SQLite then PostgreSQL: time and
# peak RSS. Not one of the issue's workloads: the first load of a large
# employer's portal, and every refresh after it.
workload_import() {
  local dir size=${1:-1000000}
  dir=$(data "$size")
  cd "$dir"
  : >"$T/a"
  : >"$T/b"
  for _ in $(seq "$REPEAT"); do
    rm -f "$T/import.db"*
    measure "$T/a" env CHORUS_SYNC__STORE__URL="sqlite://$T/import.db" "$BIN" -q import-current portal.csv
    measure "$T/b" env CHORUS_SYNC__STORE__URL="$(new_pg_schema)" "$BIN" -q import-current portal.csv
    drop_pg_schemas
  done
  printf '| import-current, %s attachments | SQLite %.2fs wall, %.2fs CPU, %s MB | PostgreSQL %.2fs wall, %.2fs CPU, %s MB |\n' \
    "$(($(wc -l <portal.csv) - 1))" \
    "$(col 1 "$T/a" | median)" "$(cpu "$T/a" | median)" "$(max_rss_mb "$T/a")" \
    "$(col 1 "$T/b" | median)" "$(cpu "$T/b" | median)" "$(max_rss_mb "$T/b")"
  cd "$ROOT"
}

main() {
  local w=${1:-}
  [ -n "$w" ] || { sed -n '2,11p' "$0"; exit 2; }
  shift
  deps
  build
  T=$(mktemp -d "$BENCH/tmp.XXXXXX")
  trap 'stop_slapd; drop_pg_schemas; rm -rf "$T"' EXIT
  load
  case $w in
    xlsx | steady | csv | ldap | run | approvals | python | daemon | scaling | formats | adoption | import) "workload_$w" "$@" ;;
    all)
      for x in xlsx steady csv ldap run approvals python daemon scaling formats; do "workload_$x"; done
      ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
  esac
  load
}

main "$@"
