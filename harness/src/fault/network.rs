//! What a network fault decides before it starts: a partition's sides (drawn from the seed) and
//! a link fault's parameters, both written into its invoke.

use super::{Action, LinkKind, Nemesis, Shape};
use crate::netns::Endpoint;
use crate::platform::Platform;
use crate::proxy::LinkFault;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

/// Two sides a partition cuts apart.
pub type Cut = (Vec<Endpoint>, Vec<Endpoint>);

/// What an action needs decided before its invoke is recorded.
pub enum Plan {
    Nothing,
    /// A partition's cuts.
    Cuts(Vec<Cut>),
    /// A link fault's parameters.
    Link(LinkFault),
}

impl Plan {
    /// Decides what `action` on `node` needs (partition sides from `rng`, link parameters from
    /// `params`) and adds it to the op's `value`.
    pub fn new(
        action: Action,
        node: usize,
        platform: &Platform,
        params: &Nemesis,
        rng: &mut StdRng,
        value: &mut Value,
    ) -> Plan {
        let (plan, extra) = match action {
            Action::Partition(shape) => {
                let (cuts, sides) = partition_of(shape, node, platform, rng);
                (Plan::Cuts(cuts), json!({ "sides": sides }))
            }
            Action::Link(kind) => {
                let fault = link_fault(kind, params);
                let reset = (kind == LinkKind::Reset).then_some(params.reset_interval_ms);
                let extra =
                    json!({"fault": kind.name(), "params": fault, "reset_interval_ms": reset});
                (Plan::Link(fault), extra)
            }
            _ => (Plan::Nothing, json!({})),
        };
        if let (Some(v), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        plan
    }
}

/// The proxy setting of a link fault of `kind`, from the nemesis parameters.
fn link_fault(kind: LinkKind, n: &Nemesis) -> LinkFault {
    LinkFault {
        links: n.links,
        delay_ms: if kind == LinkKind::Delay {
            n.delay_ms
        } else {
            0
        },
        jitter_ms: if kind == LinkKind::Delay {
            n.jitter_ms
        } else {
            0
        },
        bandwidth_bytes_per_s: if kind == LinkKind::Bandwidth {
            n.bandwidth_bytes_per_s
        } else {
            0
        },
        blackhole: kind == LinkKind::Blackhole,
        drop_responses: kind == LinkKind::DropResponses,
        reset_in_flight_min: if kind == LinkKind::DropResponses {
            n.reset_in_flight_min
        } else {
            0
        },
        reset_cuts_request: kind == LinkKind::Reset && n.reset_cuts_request,
    }
}

/// A partition's cuts, and its sides by node name (`clients` for the client side). Halves: the
/// target and, drawn from `rng`, others up to (nodes - 1) / 2 in all on one side (the minority;
/// the target alone with 3 or 4 nodes), the rest (the controller wherever the draw puts it) on
/// the other.
fn partition_of(
    shape: Shape,
    node: usize,
    platform: &Platform,
    rng: &mut StdRng,
) -> (Vec<Cut>, Vec<Vec<String>>) {
    let count = platform.node_count();
    let others: Vec<usize> = (0..count).filter(|&j| j != node).collect();
    let (a, b): Cut = match shape {
        Shape::CutClients => (vec![Endpoint::Clients], vec![Endpoint::Node(node)]),
        Shape::Halves => halves(node, count, others, rng),
        Shape::Isolate => (
            vec![Endpoint::Node(node)],
            others
                .iter()
                .copied()
                .map(Endpoint::Node)
                .chain(std::iter::once(Endpoint::Clients))
                .collect(),
        ),
    };
    let names = |side: &[Endpoint]| -> Vec<String> {
        side.iter()
            .map(|e| match e {
                Endpoint::Node(j) => platform.name(*j).to_string(),
                Endpoint::Clients => "clients".to_string(),
            })
            .collect()
    };
    let sides = vec![names(&a), names(&b)];
    (vec![(a, b)], sides)
}

/// The target on the smaller side, (count - 1) / 2 nodes in all (at least itself), the others
/// shuffled from the seeded stream.
fn halves(node: usize, count: usize, mut rest: Vec<usize>, rng: &mut StdRng) -> Cut {
    // Fisher-Yates from the seeded stream.
    for k in (1..rest.len()).rev() {
        rest.swap(k, rng.random_range(0..=k));
    }
    let extra = ((count - 1) / 2)
        .saturating_sub(1)
        .min(rest.len().saturating_sub(1));
    let side_a: Vec<Endpoint> = std::iter::once(node)
        .chain(rest[..extra].iter().copied())
        .map(Endpoint::Node)
        .collect();
    (
        side_a,
        rest[extra..].iter().copied().map(Endpoint::Node).collect(),
    )
}
