//! `kaos run --junit`, `kaos matrix` and `kaos report` end to end on a single real broker.

mod common;
use common::{exited, kaos_in, one_broker, producer, CONSUMER};

/// The matrix's base scenario: two seconds of an async producer and a consumer on one broker.
fn base() -> String {
    let producer = producer(
        "async",
        300,
        r#""acks" = "all", "message.timeout.ms" = "5000""#,
    );
    one_broker("base", 2, 5, 1, &(producer + CONSUMER))
}

const MATRIX: &str = r#"
name = "mini"
base = "base.toml"
[[vary]]
key = 'clients[0].config.acks'
values = ["1", "all"]
[[expect]]
when = { 'clients[0].config.acks' = "1" }
acknowledged_min = 1000000000
"#;

#[test]
fn a_matrix_runs_every_configuration_compares_them_and_the_store_gets_an_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("base.toml"), base()).expect("base");
    std::fs::write(tmp.path().join("m.toml"), MATRIX).expect("matrix");
    let out = kaos_in(
        tmp.path(),
        &[
            "matrix", "m.toml", "--seeds", "2", "--store", "store", "--junit", "out.xml",
        ],
    );
    // acks=1 carries an expectation no run can meet, so the matrix as a whole fails.
    let stdout = exited(&out, 1);
    // Two configurations × two seeds.
    assert_eq!(stdout.matches("verdict: VALID").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("verdict: INVALID").count(), 2, "{stdout}");

    let page = stdout
        .lines()
        .find_map(|l| l.strip_prefix("comparison: "))
        .expect("comparison path printed");
    let html = std::fs::read_to_string(tmp.path().join(page)).expect("comparison.html");
    // One row per configuration, each linking the reports of its two seeds (5 and 6).
    let rows: Vec<&str> = html.split("<tr class=\"config ").skip(1).collect();
    assert_eq!(rows.len(), 2, "{html}");
    for row in rows {
        assert_eq!(
            row[..row.find("</tr>").expect("row end")]
                .matches("report.html")
                .count(),
            2
        );
        assert!(row.contains(">5</a>") && row.contains(">6</a>"), "{row}");
    }
    assert!(
        html.contains("id=\"heatmap-lost\""),
        "the chart leads the page"
    );

    let junit = std::fs::read_to_string(tmp.path().join("out.xml")).expect("junit");
    assert_eq!(junit.matches("<testcase").count(), 4, "{junit}");
    assert_eq!(junit.matches("<failure").count(), 2, "{junit}");

    let report = kaos_in(tmp.path(), &["report", "store"]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let index = std::fs::read_to_string(tmp.path().join("store/index.html")).expect("index.html");
    for name in ["mini-1", "mini-all"] {
        assert!(index.contains(name), "index lists {name}");
    }
}

#[test]
fn run_writes_junit_for_its_scenario() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("base.toml"), base()).expect("base");
    let out = kaos_in(
        tmp.path(),
        &["run", "base.toml", "--store", "store", "--junit", "one.xml"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let junit = std::fs::read_to_string(tmp.path().join("one.xml")).expect("junit");
    assert_eq!(junit.matches("<testcase").count(), 1, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
}
