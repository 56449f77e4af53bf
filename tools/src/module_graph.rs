//! The module import graph of a crate, read from its source with `syn`.
//!
//! Nodes are modules: the crate root (`crate`), each file a `mod name;` declaration brings in and
//! each inline `mod name { … }`. An edge `a → b` means module `a` names something in module `b`:
//! a `use` (any visibility) or a path in code that starts with `crate::`, `self::`, `super::` or
//! the name of a child module of `a`. A path ends at the deepest module it names; a name that a
//! module re-exports (`pub use m::Thing`) is followed to where it is defined, so a crate root that
//! re-exports its modules' types is not a hub every module depends on. Items under
//! `#[cfg(test)]` are skipped: a test module may look anywhere without making a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use syn::visit::Visit;

use crate::sources::{self, is_test_only};

/// One crate target's modules and the references between them.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// `broker/src/lib.rs`, …: the root file, relative to the workspace.
    pub name: String,
    /// Module paths, `crate` for the root, then `server::cluster`, …
    pub modules: Vec<String>,
    index: BTreeMap<Vec<String>, usize>,
    /// from → to → one reference that makes the edge (its text, `crate::api::log_error_code`).
    edges: BTreeMap<usize, BTreeMap<usize, String>>,
    /// Per module: names it re-exports (`pub use`), to the path they name (as written there).
    reexports: Vec<BTreeMap<String, Vec<String>>>,
    /// (module, path as written, text) references, resolved once every module is known.
    references: Vec<(usize, Vec<String>, String)>,
}

/// A strongly connected component of a module graph (more than one module), with one cycle
/// through all of its… or at least some of its modules spelled out, each hop with the reference
/// that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The root file of the crate target.
    pub graph: String,
    /// Every module of the component, sorted.
    pub modules: Vec<String>,
    /// A cycle: (module, the reference it makes to the next one); the last refers to the first.
    pub hops: Vec<(String, String)>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} modules in one cycle: {}",
            self.graph,
            self.modules.len(),
            self.modules.join(", ")
        )?;
        for (module, reference) in &self.hops {
            writeln!(f, "    {module}  uses  {reference}")?;
        }
        Ok(())
    }
}

/// Every crate target of the workspace at `root` (its `Cargo.toml` `members`): `src/lib.rs`,
/// `src/main.rs` and `src/bin/*.rs` of each, as separate graphs.
pub fn crate_graphs(root: &Path) -> Result<Vec<ModuleGraph>, String> {
    let mut graphs = Vec::new();
    for target in sources::crate_targets(root, None)? {
        graphs.push(ModuleGraph::read(target.name, &target.root_file)?);
    }
    Ok(graphs)
}

impl ModuleGraph {
    /// Reads the crate whose root file is `root_file`.
    pub fn read(name: String, root_file: &Path) -> Result<ModuleGraph, String> {
        let mut graph = ModuleGraph {
            name,
            ..ModuleGraph::default()
        };
        let dir = root_file.parent().unwrap_or(Path::new("."));
        graph.read_file(Vec::new(), root_file, dir)?;
        graph.resolve();
        Ok(graph)
    }

    /// A graph from source texts by module path (`""` for the root, `"a::b"`), for tests.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<ModuleGraph, String> {
        let mut graph = ModuleGraph {
            name: "test".into(),
            ..ModuleGraph::default()
        };
        let by_path: BTreeMap<&str, &str> = sources.iter().copied().collect();
        fn walk(
            graph: &mut ModuleGraph,
            by_path: &BTreeMap<&str, &str>,
            path: Vec<String>,
        ) -> Result<(), String> {
            let key = path.join("::");
            let text = by_path
                .get(key.as_str())
                .ok_or(format!("no source {key}"))?;
            let file = syn::parse_file(text).map_err(|e| format!("{key}: {e}"))?;
            for child in graph.read_items(&path, &file.items, None)? {
                walk(graph, by_path, child)?;
            }
            Ok(())
        }
        walk(&mut graph, &by_path, Vec::new())?;
        graph.resolve();
        Ok(graph)
    }

    fn module(&mut self, path: &[String]) -> usize {
        if let Some(i) = self.index.get(path) {
            return *i;
        }
        let i = self.modules.len();
        self.modules.push(if path.is_empty() {
            "crate".to_owned()
        } else {
            path.join("::")
        });
        self.index.insert(path.to_vec(), i);
        self.reexports.push(BTreeMap::new());
        i
    }

    /// Reads module `path` from `file`; its child modules' files are in `dir`.
    fn read_file(&mut self, path: Vec<String>, file: &Path, dir: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        for child in self.read_items(&path, &parsed.items, Some(dir))? {
            let name = child.last().cloned().unwrap_or_default();
            let child_file = sources::child_module_file(dir, &name);
            self.read_file(child, &child_file, &dir.join(&name))?;
        }
        Ok(())
    }

    /// Records the references of `items` (module `path`); returns the child modules declared by
    /// `mod name;` (inline modules are read here, their own children returned too).
    fn read_items(
        &mut self,
        path: &[String],
        items: &[syn::Item],
        dir: Option<&Path>,
    ) -> Result<Vec<Vec<String>>, String> {
        let me = self.module(path);
        let mut children = Vec::new();
        for item in items {
            if is_test_only(item) {
                continue;
            }
            if let syn::Item::Mod(m) = item {
                let mut child = path.to_vec();
                child.push(m.ident.to_string());
                self.module(&child);
                match &m.content {
                    None => children.push(child),
                    Some((_, inner)) => {
                        let inner_dir = dir.map(|d| d.join(m.ident.to_string()));
                        children.extend(self.read_items(&child, inner, inner_dir.as_deref())?);
                    }
                }
                continue;
            }
            if let syn::Item::Use(u) = item {
                let public = !matches!(u.vis, syn::Visibility::Inherited);
                let mut flat = Vec::new();
                flatten_use(&u.tree, Vec::new(), &mut flat);
                for (segments, name) in flat {
                    if u.leading_colon.is_some() {
                        continue;
                    }
                    if public && name != "*" {
                        self.reexports[me].insert(name, segments.clone());
                    }
                    let text = format!("use {}", segments.join("::"));
                    self.references.push((me, segments, text));
                }
                continue;
            }
            let mut paths = PathCollector::default();
            paths.visit_item(item);
            for segments in paths.paths {
                let text = segments.join("::");
                self.references.push((me, segments, text));
            }
        }
        Ok(children)
    }

    /// The absolute path (from the crate root) `segments` names in module `from`, or None when
    /// it does not start in this crate (`std::…`, another crate, a local name).
    fn absolute(&self, from: &[String], segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut base = from.to_vec();
        let mut rest = segments;
        match first.as_str() {
            "crate" => {
                base.clear();
                rest = &segments[1..];
            }
            "self" => rest = &segments[1..],
            "super" => {
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            // A child module's name (`consumer::run` in lib.rs), else not this crate's.
            child => {
                let mut path = from.to_vec();
                path.push(child.to_owned());
                if !self.index.contains_key(&path) {
                    return None;
                }
            }
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn resolve(&mut self) {
        let references = std::mem::take(&mut self.references);
        for (from, segments, text) in references {
            let from_path: Vec<String> = self.path_of(from);
            let Some(absolute) = self.absolute(&from_path, &segments) else {
                continue;
            };
            if let Some(to) = self.target(&absolute, 0) {
                if to != from {
                    self.edges
                        .entry(from)
                        .or_default()
                        .entry(to)
                        .or_insert(text);
                }
            }
        }
    }

    fn path_of(&self, module: usize) -> Vec<String> {
        self.index
            .iter()
            .find(|(_, i)| **i == module)
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }

    /// The module an absolute path ends in, through re-exports.
    fn target(&self, absolute: &[String], depth: usize) -> Option<usize> {
        let mut deepest = (0, *self.index.get(&Vec::new())?);
        for len in 1..=absolute.len() {
            match self.index.get(&absolute[..len]) {
                Some(i) => deepest = (len, *i),
                None => break,
            }
        }
        let (len, module) = deepest;
        if let (Some(name), true) = (absolute.get(len), depth < REEXPORT_DEPTH_MAX) {
            if let Some(written) = self.reexports[module].get(name) {
                if let Some(mut followed) = self.absolute(&absolute[..len], written) {
                    followed.extend(absolute[len + 1..].iter().cloned());
                    return self.target(&followed, depth + 1);
                }
            }
        }
        Some(module)
    }

    /// The modules module `from` refers to.
    pub fn uses(&self, from: &str) -> Vec<&str> {
        let Some(i) = self.modules.iter().position(|m| m == from) else {
            return Vec::new();
        };
        self.edges
            .get(&i)
            .map(|to| to.keys().map(|j| self.modules[*j].as_str()).collect())
            .unwrap_or_default()
    }

    /// Every strongly connected component of more than one module (Tarjan's algorithm), each with
    /// one cycle through some of its modules.
    pub fn cycles(&self) -> Vec<Cycle> {
        let n = self.modules.len();
        let mut state = Tarjan {
            index: vec![None; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next: 0,
            components: Vec::new(),
        };
        for v in 0..n {
            if state.index[v].is_none() {
                self.strongconnect(v, &mut state);
            }
        }
        let mut cycles: Vec<Cycle> = state
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|component| {
                let mut modules: Vec<String> =
                    component.iter().map(|i| self.modules[*i].clone()).collect();
                modules.sort();
                Cycle {
                    graph: self.name.clone(),
                    modules,
                    hops: self.one_cycle(&component),
                }
            })
            .collect();
        cycles.sort_by(|a, b| a.modules.cmp(&b.modules));
        cycles
    }

    fn strongconnect(&self, v: usize, s: &mut Tarjan) {
        // Iterative, so that a deep module tree cannot overflow the stack.
        let mut work: Vec<(usize, Vec<usize>)> = Vec::new();
        let enter = |v: usize, s: &mut Tarjan, work: &mut Vec<(usize, Vec<usize>)>| {
            s.index[v] = Some(s.next);
            s.low[v] = s.next;
            s.next += 1;
            s.stack.push(v);
            s.on_stack[v] = true;
            let next: Vec<usize> = self
                .edges
                .get(&v)
                .map(|to| to.keys().rev().copied().collect())
                .unwrap_or_default();
            work.push((v, next));
        };
        enter(v, s, &mut work);
        while let Some((v, mut next)) = work.pop() {
            if let Some(w) = next.pop() {
                work.push((v, next));
                match s.index[w] {
                    None => enter(w, s, &mut work),
                    Some(wi) if s.on_stack[w] => s.low[v] = s.low[v].min(wi),
                    Some(_) => {}
                }
                continue;
            }
            if let Some((parent, _)) = work.last() {
                let parent = *parent;
                s.low[parent] = s.low[parent].min(s.low[v]);
            }
            if Some(s.low[v]) == s.index[v] {
                let mut component = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                s.components.push(component);
            }
        }
    }

    /// A shortest cycle through the component's first module, by breadth-first search inside it.
    fn one_cycle(&self, component: &[usize]) -> Vec<(String, String)> {
        let inside: BTreeSet<usize> = component.iter().copied().collect();
        let Some(&start) = inside.iter().next() else {
            return Vec::new();
        };
        let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(v) = queue.pop_front() {
            for w in self.edges.get(&v).into_iter().flat_map(|to| to.keys()) {
                if !inside.contains(w) {
                    continue;
                }
                if *w == start {
                    last = Some(v);
                    break 'search;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = came_from.entry(*w) {
                    e.insert(v);
                    queue.push_back(*w);
                }
            }
        }
        let mut path = Vec::new();
        let mut v = last;
        while let Some(at) = v {
            path.push(at);
            v = if at == start {
                None
            } else {
                came_from.get(&at).copied()
            };
        }
        path.reverse();
        path.iter()
            .enumerate()
            .map(|(k, from)| {
                let to = path.get(k + 1).copied().unwrap_or(start);
                let reference = self
                    .edges
                    .get(from)
                    .and_then(|e| e.get(&to))
                    .cloned()
                    .unwrap_or_default();
                (self.modules[*from].clone(), reference)
            })
            .collect()
    }
}

/// Re-exports of re-exports followed at most this deep.
const REEXPORT_DEPTH_MAX: usize = 8;

struct Tarjan {
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

/// `use a::{b, c::d as e, f::*}` as (`a::b`, "b"), (`a::c::d`, "e"), (`a::f`, "*").
fn flatten_use(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    let with = |ident: &syn::Ident| {
        let mut p = prefix.clone();
        p.push(ident.to_string());
        p
    };
    match tree {
        syn::UseTree::Path(p) => flatten_use(&p.tree, with(&p.ident), out),
        syn::UseTree::Name(n) if n.ident == "self" => {
            let name = prefix.last().cloned().unwrap_or_default();
            out.push((prefix, name));
        }
        syn::UseTree::Name(n) => out.push((with(&n.ident), n.ident.to_string())),
        syn::UseTree::Rename(r) if r.ident == "self" => out.push((prefix, r.rename.to_string())),
        syn::UseTree::Rename(r) => out.push((with(&r.ident), r.rename.to_string())),
        syn::UseTree::Glob(_) => out.push((prefix, "*".to_owned())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix.clone(), out);
            }
        }
    }
}

/// Every path of two or more segments in an item (expressions, types, patterns, macro names),
/// skipping nested items under `#[cfg(test)]`.
#[derive(Default)]
struct PathCollector {
    paths: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            self.paths
                .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test_only(item) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        let test = f.attrs.iter().any(|a| a.path().is_ident("test"));
        if !test {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cycle_through_use_and_paths_and_names_each_hop() {
        let graph = ModuleGraph::from_sources(&[
            ("", "mod a; mod b; mod c; pub use c::Thing;"),
            ("a", "use crate::b::helper; fn f() { helper(); }"),
            ("b", "pub fn helper() { super::c::go(); }"),
            (
                "c",
                "pub struct Thing; pub fn go() { let _ = crate::a::X; }",
            ),
        ])
        .expect("parses");
        let cycles = graph.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].modules, ["a", "b", "c"]);
        let text = cycles[0].to_string();
        assert!(text.contains("a  uses  use crate::b::helper"), "{text}");
        assert!(text.contains("b  uses  super::c::go"), "{text}");
        assert!(text.contains("c  uses  crate::a::X"), "{text}");
    }

    #[test]
    fn reexports_are_followed_and_tests_are_skipped() {
        // `b` names `crate::Thing`, which the root re-exports from `b`'s child: no edge to the
        // root. The root's own function uses `a`; `a` using the root's `Error` makes a cycle.
        let graph = ModuleGraph::from_sources(&[
            (
                "",
                "mod a; mod b; pub use b::inner::Thing; pub struct Error; fn run() { a::go(); }",
            ),
            (
                "a",
                "pub fn go() {} #[cfg(test)] mod tests { use crate::b::Thing; }",
            ),
            (
                "b",
                "pub mod inner { pub struct Thing; } fn f(_: crate::Thing) {}",
            ),
        ])
        .expect("parses");
        assert_eq!(graph.uses("b"), ["b::inner"]);
        assert_eq!(graph.uses("a"), Vec::<&str>::new());
        assert_eq!(graph.uses("crate"), ["a", "b::inner"]);
        assert!(graph.cycles().is_empty());
        let graph = ModuleGraph::from_sources(&[
            ("", "mod a; pub struct Error; fn run() { a::go(); }"),
            ("a", "pub fn go() -> crate::Error { crate::Error }"),
        ])
        .expect("parses");
        assert_eq!(graph.cycles()[0].modules, ["a", "crate"]);
    }

    #[test]
    fn std_and_other_crates_are_not_edges() {
        let graph = ModuleGraph::from_sources(&[
            ("", "mod a; use std::io::Write; use serde::Serialize;"),
            (
                "a",
                "fn f() { ::std::process::exit(0); serde_json::json!({}); }",
            ),
        ])
        .expect("parses");
        assert!(graph.uses("crate").is_empty());
        assert!(graph.uses("a").is_empty());
    }
}
