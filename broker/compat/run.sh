#!/usr/bin/env bash
# librdkafka's own integration tests against kaos-broker (or another broker by address).
#
#   broker/compat/run.sh [--list FILE] [--only SUBTEST[,SUBTEST...]] [--bootstrap HOST:PORT]
#                        [--work DIR] [--out FILE] [--broker-bin PATH] [--table-only]
#
# Builds librdkafka's test runner from the rdkafka-sys sources in the cargo registry (the
# librdkafka the workspace bundles; copied to WORK/librdkafka, built once: `./configure
# --no-download`, `make libs`, `make -C tests build`; built again when rapidjson-dev appears,
# which the stats tests need), then runs the sub-tests of the list
# (default: broker/compat/librdkafka-tests.txt, lines `SUBTEST MODE`, MODE quick | full |
# noautocreate). The runner selects tests by number, so the sub-tests of one number and mode run
# together in one invocation, against a fresh kaos-broker on a free loopback port (fresh data
# dir, num.partitions=4; auto-create off for noautocreate; a controller and three brokers when the
# test's source creates a topic with replication factor 3). With --bootstrap, no broker is started:
# every run goes to that address. Writes a Markdown table (sub-test, mode, result, seconds,
# reason) to --out (default WORK/results.md) and prints the counts; --table-only writes the table
# of the runs already in WORK/runs again without running anything (a run replaces only the runs
# of the tests it runs, so `--only` re-runs some and `--table-only` then tabulates all).
#
# WORK defaults to target/compat of this checkout, so that two worktrees run side by side; two
# invocations on one WORK wait for each other (a lock on WORK/.lock).
#
# Exit: 0 when every listed sub-test passed or was skipped, 1 otherwise, 2 on a usage or build
# error.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
list="$here/librdkafka-tests.txt"
only=""
bootstrap=""
work="$repo/target/compat"
out=""
broker_bin="$repo/target/release/kaos-broker"
table_only=false
test_timeout_s="${COMPAT_TEST_TIMEOUT_S:-900}"

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --list) list="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --bootstrap) bootstrap="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --broker-bin) broker_bin="$2"; shift 2 ;;
        --table-only) table_only=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -f "$list" ]] || { echo "run.sh: the list $list does not exist" >&2; exit 2; }
out="${out:-$work/results.md}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
# One invocation at a time per work directory (the runner's build and WORK/runs are shared).
exec 9>"$work/.lock"
if ! flock -n 9; then
    echo "run.sh: another run.sh uses $work; waiting for it (or pass another --work)" >&2
    flock 9
fi

# --- build ---------------------------------------------------------------------------------
build_runner() {
    local version src
    version="$(awk '/^name = "rdkafka-sys"/{getline; gsub(/[" ]/,""); sub(/version=/,""); print}' \
        "$repo/Cargo.lock")"
    src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$version"/librdkafka \
        2>/dev/null | head -1 || true)"
    if [[ -z "$src" ]]; then
        echo "run.sh: rdkafka-sys $version is not in the cargo registry: run \`cargo fetch\` first" >&2
        exit 2
    fi
    # The build's identity: its sources and whether RapidJSON (rapidjson-dev, for the tests that
    # check statistics JSON: 0053, 0098, 0101, 0110) was there for `./configure` to find.
    local stamp="$src"
    [[ -f /usr/include/rapidjson/schema.h ]] && stamp="$stamp rapidjson"
    if [[ -x "$work/librdkafka/tests/test-runner" && -f "$work/librdkafka/.kaos-source" ]] &&
        [[ "$(cat "$work/librdkafka/.kaos-source")" == "$stamp" ]]; then
        return
    fi
    echo "building librdkafka's test runner from $src in $work/librdkafka (minutes)" >&2
    rm -rf "$work/librdkafka"
    cp -r "$src" "$work/librdkafka"
    (
        cd "$work/librdkafka"
        ./configure --no-download >"$work/build.log" 2>&1
        make -j"${CARGO_BUILD_JOBS:-2}" libs >>"$work/build.log" 2>&1
        make -C tests -j"${CARGO_BUILD_JOBS:-2}" build >>"$work/build.log" 2>&1
    ) || { echo "run.sh: the build failed, see $work/build.log" >&2; exit 2; }
    grep -q 'WITH_RAPIDJSON' "$work/librdkafka/config.h" 2>/dev/null ||
        echo "run.sh: built without RapidJSON: 0053, 0098, 0101, 0110 will skip" >&2
    echo "$stamp" >"$work/librdkafka/.kaos-source"
}
$table_only || build_runner
if ! $table_only && [[ -z "$bootstrap" && ! -x "$broker_bin" ]]; then
    echo "run.sh: no broker binary at $broker_bin: cargo build --release -p broker" >&2
    exit 2
fi

# --- brokers -------------------------------------------------------------------------------
pids=()
stop_all() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

# The first whole line of LOG (one its newline ends: a line still being written is not one yet)
# that contains PREFIX, if any.
ready_line() {
    local log="$1" prefix="$2" l
    [[ -r "$log" ]] || return 0
    while IFS= read -r l; do
        if [[ "$l" == *"$prefix"* ]]; then
            printf '%s\n' "$l"
            return 0
        fi
    done <"$log"
}

# Waits (bounded) for LINE_PREFIX in LOG and prints the address after `listen=`.
wait_listen() {
    local log="$1" prefix="$2" pid="$3" line
    for _ in $(seq 300); do
        line="$(ready_line "$log" "$prefix")"
        if [[ -n "$line" ]]; then
            sed -E 's/.*listen=([0-9.:]+).*/\1/' <<<"$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "run.sh: no \`$prefix\` in $log" >&2
    tail -5 "$log" >&2 || true
    return 1
}

# start_kaos DIR MODE BROKERS: starts kaos-broker(s) in DIR and sets `address` to the bootstrap
# address (not in a subshell: `pids` must keep what it started).
start_kaos() {
    local dir="$1" mode="$2" count="$3" auto=true addrs="" id controller one
    [[ "$mode" == noautocreate ]] && auto=false
    mkdir -p "$dir"
    cat >"$dir/config.toml" <<EOF
"num.partitions" = 4
"auto.create.topics.enable" = $auto
"default.replication.factor" = $count
"offsets.topic.replication.factor" = $count
EOF
    if [[ "$count" == 1 ]]; then
        "$broker_bin" --node-id 1 --listen 127.0.0.1:0 --data-dir "$dir/data" \
            --config "$dir/config.toml" >"$dir/broker.log" 2>&1 &
        pids+=("$!")
        address="$(wait_listen "$dir/broker.log" "kaos-broker ready" "$!")" || return 1
        return 0
    fi
    "$broker_bin" controller --listen 127.0.0.1:0 --data-dir "$dir/controller" \
        --config "$dir/config.toml" >"$dir/controller.log" 2>&1 &
    pids+=("$!")
    controller="$(wait_listen "$dir/controller.log" "kaos-controller ready" "$!")" || return 1
    for id in $(seq "$count"); do
        "$broker_bin" --node-id "$id" --listen 127.0.0.1:0 --data-dir "$dir/broker-$id" \
            --controller "$controller" --config "$dir/config.toml" >"$dir/broker-$id.log" 2>&1 &
        pids+=("$!")
    done
    for id in $(seq "$count"); do
        one="$(wait_listen "$dir/broker-$id.log" "kaos-broker ready" "${pids[$id]}")" || return 1
        addrs="$addrs${addrs:+,}$one"
    done
    address="$addrs"
}

# --- runs ----------------------------------------------------------------------------------
tests_dir="$work/librdkafka/tests"
# The replication factor a test's source asks of test_create_topic*: 3 or 1.
brokers_for() {
    local num="$1"
    # The fourth argument of test_create_topic*(rk, name, partitions, replication_factor, …).
    if grep -Eq 'create_topic[a-z_]*\([^,;]*,[^,;]*,[^,;]*, *3 *[,)]' \
        "$tests_dir/$num"-*.c "$tests_dir/$num"-*.cpp 2>/dev/null; then
        echo 3
    else
        echo 1
    fi
}

declare -A mode_of=()
groups=()
while read -r name mode _; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
    case "$mode" in quick|full|noautocreate) ;; *)
        echo "run.sh: $list: sub-test $name has mode \`$mode\` (quick, full or noautocreate)" >&2
        exit 2 ;;
    esac
    mode_of[$name]="$mode"
    group="${name:0:4}:$mode"
    [[ " ${groups[*]} " == *" $group "* ]] || groups+=("$group")
done <"$list"

runs="$work/runs"
mkdir -p "$runs"
for group in "${groups[@]}"; do
    $table_only && break
    num="${group%%:*}"
    mode="${group#*:}"
    dir="$runs/$num-$mode"
    rm -rf "$dir"
    mkdir -p "$dir"
    count="$(brokers_for "$num")"
    if [[ -n "$bootstrap" ]]; then
        address="$bootstrap"
    elif ! start_kaos "$dir" "$mode" "$count"; then
        echo "BROKER-START-FAILED" >"$dir/runner.out"
        stop_all
        continue
    fi
    printf 'bootstrap.servers=%s\ntest.timeout.multiplier=2.0\n' "$address" >"$dir/test.conf"
    args=(-L)
    [[ "$mode" == quick ]] && args=(-Q -L)
    scenario=default
    [[ "$mode" == noautocreate ]] && scenario=noautocreate
    echo "$(date -u +%H:%M:%S) $num ($mode, $count broker(s) at $address)" >&2
    start=$(date +%s)
    (
        cd "$tests_dir"
        RDKAFKA_TEST_CONF="$dir/test.conf" TESTS="$num" TEST_KAFKA_VERSION=3.9.0 \
            TEST_SCENARIO="$scenario" timeout -k 10 "$test_timeout_s" ./run-test.sh "${args[@]}"
    ) >"$dir/runner.out" 2>&1 || true
    echo "$(( $(date +%s) - start ))" >"$dir/seconds"
    stop_all
done

# --- table ---------------------------------------------------------------------------------
pass=0 fail=0 skip=0
{
    echo "| sub-test | mode | result | s | reason |"
    echo "|---|---|---|---|---|"
    for name in $(printf '%s\n' "${!mode_of[@]}" | sort); do
        mode="${mode_of[$name]}"
        dir="$runs/${name:0:4}-$mode"
        row="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/runner.out" 2>/dev/null |
            grep -a -E "^\| +$name +\| " | tail -1 || true)"
        state="$(awk -F'|' '{gsub(/ /,"",$3); print $3}' <<<"$row")"
        reason="$(awk -F'|' '{print $5}' <<<"$row" | sed -E 's/^ +//; s/ +$//; s/\|/\\|/g')"
        case "$state" in
            PASSED) result=pass; pass=$((pass + 1)) ;;
            SKIPPED) result=skip; skip=$((skip + 1)) ;;
            FAILED) result=fail; fail=$((fail + 1)) ;;
            *) result=fail; fail=$((fail + 1))
               # A failed assertion aborts the runner before its summary: take its report.
               failed="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/runner.out" 2>/dev/null |
                   grep -a -A1 -E "^### Test \"$name[ \"].*failed" | head -2 | tr '\n' ' ' |
                   sed -E 's/###//g; s/ at [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9:]+ [0-9]{4}//; s/\|/\\|/g' || true)"
               if grep -q BROKER-START-FAILED "$dir/runner.out" 2>/dev/null; then
                   reason="the broker did not start"
               elif [[ -n "$failed" ]]; then
                   reason="$failed"
               elif [[ -n "$state" ]]; then
                   reason="$state"
               else
                   reason="no result: the runner ended without a summary (timeout or crash)"
               fi ;;
        esac
        echo "| $name | $mode | $result | $(cat "$dir/seconds" 2>/dev/null || echo -) | ${reason:0:300} |"
    done
} >"$out"
echo "passed $pass, failed $fail, skipped $skip of $((pass + fail + skip)); table: $out" >&2
[[ "$fail" == 0 ]]
