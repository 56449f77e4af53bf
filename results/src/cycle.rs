//! A dependency cycle (`Case::cycle`) drawn as a small inline SVG: each transaction a labelled
//! circle on a ring, each step an arrow named by its kind and partition, in the order Elle
//! explains them.

use std::fmt::Write as _;

use checkers::{Case, CycleStep};

use crate::page::escape;

const SIZE: f64 = 280.0;
const RING: f64 = 95.0;
const NODE: f64 = 22.0;

/// The cycle of `case` as an `<svg class="cycle">`, or nothing when the case has no cycle.
pub(crate) fn cycle_svg(case: &Case) -> Option<String> {
    if case.cycle.is_empty() {
        return None;
    }
    // Transactions in order of appearance, named T1, T2, … as the explanation names them.
    let mut txns: Vec<u64> = Vec::new();
    for step in &case.cycle {
        for op in [step.from_op, step.to_op] {
            if !txns.contains(&op) {
                txns.push(op);
            }
        }
    }
    let at = |op: u64| {
        let i = txns.iter().position(|&t| t == op).unwrap_or(0) as f64;
        let angle = std::f64::consts::TAU * i / txns.len() as f64 - std::f64::consts::FRAC_PI_2;
        (
            SIZE / 2.0 + RING * angle.cos(),
            SIZE / 2.0 + RING * angle.sin(),
        )
    };
    let marker = format!("cycle-arrow-{}-{}", case.id, case.cycle[0].from_op);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"cycle\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{SIZE}\" height=\"{SIZE}\" \
         viewBox=\"0 0 {SIZE} {SIZE}\" role=\"img\" aria-label=\"dependency cycle of {} transactions\">\
         <defs><marker id=\"{marker}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#b03030\"/></marker></defs>",
        txns.len()
    );
    for step in &case.cycle {
        arrow(&mut svg, step, at(step.from_op), at(step.to_op), &marker);
    }
    for (i, &op) in txns.iter().enumerate() {
        let (x, y) = at(op);
        let _ = write!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{NODE}\" fill=\"#fff4e0\" stroke=\"#805000\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">T{}</text>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">op {op}</text>",
            y - 2.0,
            i + 1,
            y + 10.0
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// One step: an arrow between the rims of two circles, bent aside so that the two directions of
/// a two-transaction cycle do not overlap, with its label beside its middle.
fn arrow(svg: &mut String, step: &CycleStep, from: (f64, f64), to: (f64, f64), marker: &str) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ux, uy) = (dx / length, dy / length);
    // The normal to the right of the direction of travel.
    let (nx, ny) = (-uy, ux);
    let bend = 8.0;
    let (x1, y1) = (
        from.0 + ux * NODE + nx * bend,
        from.1 + uy * NODE + ny * bend,
    );
    let (x2, y2) = (to.0 - ux * NODE + nx * bend, to.1 - uy * NODE + ny * bend);
    let (mx, my) = ((x1 + x2) / 2.0 + nx * 12.0, (y1 + y2) / 2.0 + ny * 12.0);
    let label = match step.partition {
        Some(p) => format!("{} p{p}", step.kind),
        None => step.kind.clone(),
    };
    let _ = write!(
        svg,
        "<line class=\"step {kind}\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" \
         stroke=\"#b03030\" stroke-width=\"1.6\"{dash} marker-end=\"url(#{marker})\"/>\
         <text x=\"{mx:.1}\" y=\"{my:.1}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#602020\">{}</text>",
        escape(&label),
        kind = escape(&step.kind),
        dash = if step.kind == "rw" {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(from_op: u64, to_op: u64, kind: &str) -> CycleStep {
        CycleStep {
            from_op,
            to_op,
            kind: kind.to_owned(),
            partition: Some(0),
            from_id: Some(1),
            from_offset: Some(0),
            to_id: Some(2),
            to_offset: Some(1),
        }
    }

    #[test]
    fn draws_every_transaction_and_step() {
        let mut case: Case = serde_json::from_str(
            r#"{"id":1,"topic":"t","acknowledged_at":null,"read_at":[],"op_indexes":[],
                "time_s":0.0,"faults_nearby":[],"cause":"x"}"#,
        )
        .expect("a case");
        assert_eq!(cycle_svg(&case), None);
        case.cycle = vec![step(2, 3, "wr"), step(3, 5, "rw"), step(5, 2, "ww")];
        let svg = cycle_svg(&case).expect("drawn");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("<line class=\"step").count(), 3);
        for label in ["T1", "T2", "T3", "op 5", "wr p0", "rw p0", "ww p0"] {
            assert!(svg.contains(label), "{label} missing in {svg}");
        }
    }
}
