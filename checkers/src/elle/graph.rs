//! A directed graph over transaction numbers with a kind on each edge, strongly connected
//! components (Tarjan, iterative) and shortest cycles (breadth-first search).

/// The kind of a dependency, as a bit so that searches can take a set of kinds.
pub const WW: u8 = 1;
pub const WR: u8 = 2;
pub const RW: u8 = 4;
pub const PROCESS: u8 = 8;
pub const REALTIME: u8 = 16;

/// Edges in compressed sparse rows: `targets[starts[n]..starts[n + 1]]` leave node `n`.
pub struct Graph {
    starts: Vec<u32>,
    targets: Vec<(u32, u8)>,
}

impl Graph {
    /// From (from, to, kind) edges over `nodes` nodes; parallel edges of different kinds merge.
    pub fn new(nodes: usize, mut edges: Vec<(u32, u32, u8)>) -> Graph {
        edges.sort_unstable();
        let mut merged: Vec<(u32, u32, u8)> = Vec::with_capacity(edges.len());
        for (a, b, k) in edges {
            match merged.last_mut() {
                Some(last) if last.0 == a && last.1 == b => last.2 |= k,
                _ => merged.push((a, b, k)),
            }
        }
        let mut starts = vec![0u32; nodes + 1];
        for &(a, _, _) in &merged {
            starts[a as usize + 1] += 1;
        }
        for i in 0..nodes {
            starts[i + 1] += starts[i];
        }
        let targets = merged.into_iter().map(|(_, b, k)| (b, k)).collect();
        Graph { starts, targets }
    }

    pub fn nodes(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn edges(&self, node: u32) -> &[(u32, u8)] {
        &self.targets[self.starts[node as usize] as usize..self.starts[node as usize + 1] as usize]
    }

    /// The kinds of the edge `a → b` (0: none).
    pub fn kinds(&self, a: u32, b: u32) -> u8 {
        let edges = self.edges(a);
        edges
            .binary_search_by_key(&b, |e| e.0)
            .map_or(0, |i| edges[i].1)
    }

    /// The strongly connected components with more than one node (Tarjan's algorithm, with an
    /// explicit stack so that a long chain cannot overflow the thread's stack).
    pub fn components(&self) -> Vec<Vec<u32>> {
        const UNSEEN: u32 = u32::MAX;
        let n = self.nodes();
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        let mut next = 0u32;
        // (node, position in its edge list)
        let mut work: Vec<(u32, usize)> = Vec::new();
        for root in 0..n as u32 {
            if index[root as usize] != UNSEEN {
                continue;
            }
            work.push((root, 0));
            while let Some(&mut (v, ref mut at)) = work.last_mut() {
                let vi = v as usize;
                if *at == 0 && index[vi] == UNSEEN {
                    index[vi] = next;
                    low[vi] = next;
                    next += 1;
                    stack.push(v);
                    on_stack[vi] = true;
                }
                let edges = self.edges(v);
                if let Some(&(w, _)) = edges.get(*at) {
                    *at += 1;
                    let wi = w as usize;
                    if index[wi] == UNSEEN {
                        work.push((w, 0));
                    } else if on_stack[wi] {
                        low[vi] = low[vi].min(index[wi]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    let p = parent as usize;
                    low[p] = low[p].min(low[vi]);
                }
                if low[vi] == index[vi] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort_unstable();
                        out.push(component);
                    }
                }
            }
        }
        out
    }

    /// The shortest path `from → … → to` over edges of `kinds` inside `within` (a sorted node
    /// set), by breadth-first search; `from` first, `to` last. `from == to` asks for a cycle.
    pub fn shortest_path(&self, from: u32, to: u32, kinds: u8, within: &[u32]) -> Option<Vec<u32>> {
        use std::collections::{HashMap, VecDeque};
        let inside = |n: u32| within.binary_search(&n).is_ok();
        let mut parent: HashMap<u32, u32> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(v) = queue.pop_front() {
            for &(w, k) in self.edges(v) {
                if k & kinds == 0 || !inside(w) || parent.contains_key(&w) {
                    continue;
                }
                parent.insert(w, v);
                if w == to {
                    let mut path = vec![to];
                    let mut at = v;
                    while at != from {
                        path.push(at);
                        at = parent[&at];
                    }
                    path.push(from);
                    path.reverse();
                    return Some(path);
                }
                queue.push_back(w);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_and_cycles() {
        // 0 → 1 → 2 → 0, 2 → 3, 3 → 4 → 3
        let g = Graph::new(
            5,
            vec![
                (0, 1, WW),
                (1, 2, WR),
                (2, 0, RW),
                (2, 3, WW),
                (3, 4, WW),
                (4, 3, WR),
            ],
        );
        let mut c = g.components();
        c.sort();
        assert_eq!(c, vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(
            g.shortest_path(0, 0, WW | WR | RW, &[0, 1, 2]),
            Some(vec![0, 1, 2, 0])
        );
        assert_eq!(g.shortest_path(0, 0, WW | WR, &[0, 1, 2]), None);
        assert_eq!(g.kinds(2, 0), RW);
    }
}
