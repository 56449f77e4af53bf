fn main() {
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path).unwrap();
        let ww = std::env::var("WW").is_ok();
        let a = checkers::jepsen::check_edn_with(
            &text,
            Default::default(),
            checkers::elle::Options { ww, process: false },
        )
        .unwrap();
        let mut m = serde_json::Map::new();
        let mut subs = serde_json::Map::new();
        for an in &a.anomalies {
            let mut ids: Vec<u64> = an.cases.iter().map(|c| c.id).collect();
            ids.sort();
            m.insert(an.kind.as_str().into(), serde_json::json!(ids));
            let mut s: Vec<String> = an.cases.iter().filter_map(|c| c.sub_kind.clone()).collect();
            s.sort();
            s.dedup();
            if !s.is_empty() {
                subs.insert(an.kind.as_str().into(), serde_json::json!(s));
            }
        }
        println!(
            "{}\t{}\t{}\t{}",
            path,
            serde_json::to_string(&a.verdict).unwrap(),
            serde_json::Value::Object(m),
            serde_json::Value::Object(subs)
        );
    }
}
