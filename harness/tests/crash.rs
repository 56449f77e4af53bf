//! A node that exits on its own, outside any fault, is reported as what its exit code means,
//! with the last lines of its log, as the anomaly `node_crash`, and the verdict says so. The
//! broker under test is kaos-broker with its planted crash (`debug.crash.after.ms`): the first
//! time node n1 starts it serves for two seconds, then stops as it does when an invariant fails
//! (its message on stderr, exit 71; `broker/tests/invariants.rs` shows the real broker doing that
//! on a corrupt log). Its restart at the end of the run serves normally. The docker platform's
//! twin is in `docker.rs`.

mod common;
use common::{assert_crash_reported, broker_bin, crashing_scenario, kaos_run};

#[test]
fn a_node_that_exits_on_its_own_is_reported_with_its_exit_code_meaning_and_log_tail() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = kaos_run(tmp.path(), &crashing_scenario(), &broker_bin());
    assert_crash_reported(&out, &tmp.path().join("store"));
}
