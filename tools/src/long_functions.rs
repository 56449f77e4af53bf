//! Non-test functions longer than [`LINES_MAX`] lines that do not say why.
//!
//! A function is a free `fn`, a method in an `impl` or a provided method in a `trait`, at any
//! depth (a `fn` inside another's body counts on its own, and inside its parent's lines too). Its
//! length is the lines from its signature (visibility included, doc comments and attributes not)
//! to its closing brace. It is excused by a comment starting `// length:` with a reason after the
//! colon, written directly above it: among its doc comments and attributes, or in the run of `//`
//! lines right above them. Skipped: items under `#[cfg(test)]`, `#[test]` functions (any
//! attribute whose last segment is `test`, as `#[tokio::test]`), and files no crate root reaches
//! by `mod` declarations (`tests/`, `benches/`, `examples/`; `vendor/` is not a member).

use std::fmt;
use std::path::Path;

use syn::visit::Visit;

use crate::sources::{self, has_cfg_test, is_test_only};

/// The longest a function may be without a `// length:` reason above it.
pub const LINES_MAX: usize = 100;

/// What marks a reason for a long function; a reason must follow it on the same line.
const EXCUSE: &str = "// length:";

/// A function over [`LINES_MAX`] lines with no reason written above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongFunction {
    /// The file, relative to the workspace (`results/src/report.rs`).
    pub file: String,
    /// The 1-based line of its signature.
    pub line: usize,
    /// Its name.
    pub name: String,
    /// Lines from the signature to the closing brace, both included.
    pub lines: usize,
}

impl fmt::Display for LongFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: fn {} is {} lines (over {LINES_MAX}): split it, or write `{EXCUSE} <why>` directly above it",
            self.file, self.line, self.name, self.lines
        )
    }
}

/// The unexcused long functions of the workspace members named in `members` (`["results"]`),
/// read from each crate target's root file through its `mod` declarations.
pub fn long_functions(root: &Path, members: &[&str]) -> Result<Vec<LongFunction>, String> {
    let mut found = Vec::new();
    for target in sources::crate_targets(root, Some(members))? {
        let dir = target.root_file.parent().unwrap_or(Path::new("."));
        read_file(root, &target.root_file, dir, &mut found)?;
    }
    found.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    found.dedup();
    Ok(found)
}

/// Reads one module file (its children's files are in `dir`) and the files it declares.
fn read_file(
    root: &Path,
    file: &Path,
    dir: &Path,
    found: &mut Vec<LongFunction>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let name = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let (long, children) = scan(&name, &text)?;
    found.extend(long);
    for child in children {
        let child_dir = child.iter().fold(dir.to_path_buf(), |d, m| d.join(m));
        let parent_dir = child_dir.parent().unwrap_or(dir).to_path_buf();
        let last = child.last().cloned().unwrap_or_default();
        let child_file = sources::child_module_file(&parent_dir, &last);
        read_file(root, &child_file, &child_dir, found)?;
    }
    Ok(())
}

/// The unexcused long functions of one source text, named `file` in what it returns.
pub fn long_functions_in(file: &str, text: &str) -> Result<Vec<LongFunction>, String> {
    scan(file, text).map(|(long, _)| long)
}

/// The long functions of one source text and the modules it declares by `mod name;` (as paths
/// through its inline modules: `["a", "b"]` for `mod a { mod b; }`).
fn scan(file: &str, text: &str) -> Result<(Vec<LongFunction>, Vec<Vec<String>>), String> {
    let parsed = syn::parse_file(text).map_err(|e| format!("{file}: {e}"))?;
    let mut finder = FnFinder {
        file,
        lines: text.lines().collect(),
        found: Vec::new(),
        children: Vec::new(),
        inline: Vec::new(),
    };
    finder.visit_file(&parsed);
    Ok((finder.found, finder.children))
}

struct FnFinder<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    found: Vec<LongFunction>,
    children: Vec<Vec<String>>,
    /// The inline modules (`mod a { … }`) the visitor is in.
    inline: Vec<String>,
}

impl FnFinder<'_> {
    /// Records the function whose signature starts at `vis` / `sig` and whose body is `block`,
    /// when it is too long and not excused.
    fn check(
        &mut self,
        attrs: &[syn::Attribute],
        vis: Option<&syn::Visibility>,
        sig: &syn::Signature,
        block: &syn::Block,
    ) {
        let fn_line = sig.fn_token.span.start().line;
        let start = match vis {
            Some(syn::Visibility::Public(p)) => p.span.start().line.min(fn_line),
            Some(syn::Visibility::Restricted(r)) => r.pub_token.span.start().line.min(fn_line),
            _ => fn_line,
        };
        let end = block.brace_token.span.close().end().line;
        let lines = end + 1 - start;
        if lines <= LINES_MAX || self.excused(attrs, start) {
            return;
        }
        self.found.push(LongFunction {
            file: self.file.to_owned(),
            line: start,
            name: sig.ident.to_string(),
            lines,
        });
    }

    /// A `// length: <reason>` line among the attributes (doc comments included) above line
    /// `start`, or in the run of `//` comment lines directly above them.
    fn excused(&self, attrs: &[syn::Attribute], start: usize) -> bool {
        let first = attrs
            .iter()
            .map(|a| a.pound_token.span.start().line)
            .chain(std::iter::once(start))
            .min()
            .unwrap_or(start);
        let line = |n: usize| self.lines.get(n.wrapping_sub(1)).map_or("", |l| l.trim());
        let is_excuse = |l: &str| {
            l.strip_prefix(EXCUSE)
                .is_some_and(|reason| !reason.trim().is_empty())
        };
        if (first..start).any(|n| is_excuse(line(n))) {
            return true;
        }
        (1..first)
            .rev()
            .map(line)
            .take_while(|l| l.starts_with("//"))
            .any(is_excuse)
    }
}

/// `#[test]`, `#[tokio::test]`, … or `#[cfg(test)]` on a function.
fn is_test_fn(attrs: &[syn::Attribute]) -> bool {
    has_cfg_test(attrs)
        || attrs
            .iter()
            .any(|a| a.path().segments.last().is_some_and(|s| s.ident == "test"))
}

impl<'ast> Visit<'ast> for FnFinder<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test_only(item) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let mut path = self.inline.clone();
        path.push(m.ident.to_string());
        if m.content.is_none() {
            self.children.push(path);
            return;
        }
        self.inline.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.inline.pop();
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if is_test_fn(&f.attrs) {
            return;
        }
        self.check(&f.attrs, Some(&f.vis), &f.sig, &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_test_fn(&f.attrs) {
            return;
        }
        self.check(&f.attrs, Some(&f.vis), &f.sig, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if is_test_fn(&f.attrs) {
            return;
        }
        if let Some(block) = &f.default {
            self.check(&f.attrs, None, &f.sig, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function with `signature` and `lines` lines (signature to closing brace), after `above`.
    fn function(above: &str, signature: &str, lines: usize) -> String {
        let body: String = (0..lines - 2)
            .map(|i| format!("    let _x{i} = {i};\n"))
            .collect();
        format!("{above}{signature} {{\n{body}}}\n")
    }

    fn found(text: &str) -> Vec<(usize, String, usize)> {
        long_functions_in("x.rs", text)
            .expect("parses")
            .into_iter()
            .map(|f| (f.line, f.name, f.lines))
            .collect()
    }

    #[test]
    fn a_101_line_function_is_found_and_a_100_line_one_is_not() {
        let text = function("", "fn short()", 100) + &function("/// Docs.\n", "pub fn long()", 101);
        assert_eq!(found(&text), [(102, "long".to_owned(), 101)]);
        let text = function("", "pub(crate) fn exactly()", 100);
        assert_eq!(found(&text), []);
    }

    #[test]
    fn methods_trait_defaults_and_nested_functions_count() {
        let method = function("", "pub fn method(&self)", 101);
        let provided = function("", "fn provided(&self)", 102);
        let nested = function("", "fn inner()", 103);
        let text = format!(
            "struct S;\nimpl S {{\n{method}}}\ntrait T {{\n{provided}fn required(&self);\n}}\nfn outer() {{\n{nested}}}\n"
        );
        let names: Vec<(String, usize)> =
            found(&text).into_iter().map(|(_, n, l)| (n, l)).collect();
        assert_eq!(
            names,
            [
                ("method".to_owned(), 101),
                ("provided".to_owned(), 102),
                ("outer".to_owned(), 105),
                ("inner".to_owned(), 103)
            ]
        );
    }

    #[test]
    fn a_length_comment_with_a_reason_excuses_it() {
        let above =
            "// length: one match over every op kind, read top to bottom.\n/// Docs.\n#[inline]\n";
        assert_eq!(found(&function(above, "fn long()", 150)), []);
        let between = "/// Docs.\n// length: a table.\n#[inline]\n";
        assert_eq!(found(&function(between, "fn long()", 150)), []);
        // No reason, or not directly above (a blank line between), excuses nothing.
        let bare = "// length:\n";
        assert_eq!(found(&function(bare, "fn long()", 150)).len(), 1);
        let apart = "// length: a table.\n\n";
        assert_eq!(found(&function(apart, "fn long()", 150)).len(), 1);
    }

    #[test]
    fn test_code_is_skipped() {
        let long = function("", "fn helper()", 120);
        let test = function("#[test]\n", "fn a_test()", 120);
        let tokio = function("#[tokio::test]\n", "async fn a_tokio_test()", 120);
        let text = format!("#[cfg(test)]\nmod tests {{\n{long}}}\n{test}{tokio}");
        assert_eq!(found(&text), []);
        let cfg = function("#[cfg(all(test, unix))]\n", "fn only_in_tests()", 120);
        assert_eq!(found(&cfg), []);
    }

    #[test]
    fn bad_source_is_an_error_naming_the_file() {
        let err = long_functions_in("broken.rs", "fn x( {").expect_err("does not parse");
        assert!(err.starts_with("broken.rs:"), "{err}");
    }
}
