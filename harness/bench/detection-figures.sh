#!/bin/sh
# The detection figures of BENCHMARKS.md (issue 19): each class's library scenario run against
# kaos-broker with the bug switch that reproduces that class, once per seed (`kaos run --seeds`),
# and the line "invalid in k of n seeds (…; median verdict after V s of a run, first evidence at T s)" with the load
# average before and after beside it.
#
#   harness/bench/detection-figures.sh [CLASS …]     (default: every class below)
#
# Environment: SEEDS (default 1..10), OUT (default target/detection: the edited scenarios, each
# class's store and output), CORRECT=1 (run each scenario as the library has it, without the
# switch: the other half of the claim, "invalid in 0 of n seeds" expected; stored under
# OUT/CLASS-correct). Needs `cargo build --release -p harness -p broker` first, and root
# (lazyfs, network namespaces) for the power-loss and link-fault classes. Runs at nice 5, one
# class after another; about 10 × the scenario's duration plus start-up per class.
set -eu
cd "$(dirname "$0")/../.."
SEEDS=${SEEDS:-1..10}
OUT=${OUT:-target/detection}
KAOS=./target/release/kaos
ALL="lost_commit lost_commit_power_loss uncommitted_read truncation_hw_follower_restart truncation_hw_lagging_follower truncation_hw_lagging_follower_untriggered truncation_hw_power_loss unclean_election idempotence_window torn_tail dir_fsync pipeline_stall"
[ $# -gt 0 ] || set -- $ALL

for class in "$@"; do
    # The scenario, and the sed edit that turns its broker into the broken one.
    case $class in
    lost_commit)
        scenario=coordinator-kill-after-commit
        edit='0,/settings = { /s//settings = { "offsets.commit.required.acks" = 1, /' ;;
    lost_commit_power_loss)
        scenario=coordinator-power-loss-after-commit
        edit='0,/settings = { /s//settings = { "offsets.commit.required.acks" = 1, /' ;;
    uncommitted_read)
        scenario=leader-kill-uncommitted-reads
        edit='0,/settings = { /s//settings = { "consumer.fetch.bound" = "log-end", /' ;;
    truncation_hw_follower_restart)
        scenario=truncation-leader-epoch-follower-restart
        edit='s/"replication.truncation" = "leader-epoch"/"replication.truncation" = "high-watermark"/' ;;
    truncation_hw_lagging_follower)
        # The same double fault aimed at a follower lagging by 200 records.
        scenario=truncation-lagging-follower-restart
        edit='0,/settings = { /s//settings = { "replication.truncation" = "high-watermark", /' ;;
    truncation_hw_lagging_follower_untriggered)
        # The old way, for comparison: the same scenario with the trigger removed (the sequence
        # starts on the seed's schedule, whatever the follower's lag).
        scenario=truncation-lagging-follower-restart
        edit='0,/settings = { /s//settings = { "replication.truncation" = "high-watermark", /;/^trigger_follower_lag_min/d' ;;
    truncation_hw_power_loss)
        scenario=truncation-leader-epoch-power-loss
        edit='s/"replication.truncation" = "leader-epoch"/"replication.truncation" = "high-watermark"/' ;;
    unclean_election)
        # The controller elects outside the ISR (what unclean election does, and what a controller
        # with that bug would do with it off).
        scenario=isr-last-member-dies-unclean-off
        edit='s/"unclean.leader.election.enable" = false/"unclean.leader.election.enable" = true/g' ;;
    idempotence_window)
        scenario=idempotent-dropped-responses
        edit='0,/settings = { /s//settings = { "producer.state.batches.retained" = 1, /' ;;
    torn_tail)
        scenario=power-loss-torn-writes
        edit='0,/settings = { /s//settings = { "log.recovery.truncate.torn.tail" = false, /' ;;
    dir_fsync)
        scenario=power-loss-small-segments
        edit='0,/settings = { /s//settings = { "log.roll.dir.fsync" = false, /' ;;
    pipeline_stall)
        # A restarted broker answers Metadata before it holds the cluster image (no brokers): the
        # clients stall (pipeline_output_min_percent unmet, or the input producer's producer_loss).
        scenario=eos-pipeline-metadata-before-image
        edit='0,/settings = { /s//settings = { "metadata.before.image" = "answer", /' ;;
    *)
        echo "unknown class $class (known: $ALL)" >&2
        exit 2 ;;
    esac
    dir=$OUT/$class
    mkdir -p "$dir"
    sed "$edit" "harness/scenarios/$scenario.toml" > "$dir/$scenario.toml"
    if cmp -s "harness/scenarios/$scenario.toml" "$dir/$scenario.toml"; then
        echo "$class: the edit changed nothing in $scenario.toml" >&2
        exit 2
    fi
    if [ "${CORRECT:-0}" = 1 ]; then
        dir=$OUT/$class-correct
        mkdir -p "$dir"
        cp "harness/scenarios/$scenario.toml" "$dir/$scenario.toml"
        class="$class (correct broker)"
    fi
    before=$(cut -d' ' -f1-3 /proc/loadavg)
    started=$(date -u +%H:%M)
    nice -n 5 "$KAOS" run "$dir/$scenario.toml" --seeds "$SEEDS" --store "$dir/store" \
        > "$dir/output.txt" 2>&1 || true
    after=$(cut -d' ' -f1-3 /proc/loadavg)
    headline=$(grep -o 'invalid in [0-9]* of [0-9]* seeds.*' "$dir/output.txt" | tail -n 1)
    echo "| $class | \`$scenario\` | ${headline:-no headline: see $dir/output.txt} | $started UTC, load $before → $after |"
done
