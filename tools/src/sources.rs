//! Where a workspace's Rust source is: its crate targets' root files, the file a `mod name;`
//! declaration brings in, and which items are test-only. Shared by [`crate::module_graph`] and
//! [`crate::long_functions`], so that both read the same files.

use std::path::{Path, PathBuf};

/// One crate target: a root file (`src/lib.rs`, `src/main.rs`, `src/bin/*.rs`).
#[derive(Debug, Clone)]
pub struct CrateTarget {
    /// The workspace member's directory, as written in `members` (`broker`).
    pub member: String,
    /// The root file relative to the workspace (`broker/src/lib.rs`).
    pub name: String,
    /// The root file's path.
    pub root_file: PathBuf,
}

/// Every crate target of the workspace at `root` (its `Cargo.toml` `members`), or only those of
/// the members named in `only`.
pub fn crate_targets(root: &Path, only: Option<&[&str]>) -> Result<Vec<CrateTarget>, String> {
    let manifest_path = root.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let manifest: toml::Table =
        toml::from_str(&manifest).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let members = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(toml::Value::as_array)
        .ok_or_else(|| format!("{}: no workspace.members", manifest_path.display()))?;
    let members: Vec<&str> = members.iter().filter_map(toml::Value::as_str).collect();
    if let Some(unknown) = only.and_then(|o| o.iter().find(|m| !members.contains(m))) {
        return Err(format!(
            "{}: no workspace member {unknown}",
            manifest_path.display()
        ));
    }
    let mut targets = Vec::new();
    for member in members {
        if only.is_some_and(|o| !o.contains(&member)) {
            continue;
        }
        for root_file in root_files(&root.join(member).join("src")) {
            let name = root_file
                .strip_prefix(root)
                .unwrap_or(&root_file)
                .display()
                .to_string();
            targets.push(CrateTarget {
                member: member.to_owned(),
                name,
                root_file,
            });
        }
    }
    Ok(targets)
}

/// `lib.rs`, `main.rs` and `bin/*.rs` (sorted) of a `src` directory, those that exist.
fn root_files(src: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(bins) = std::fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = bins
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

/// The file of module `name` declared in a module whose children live in `dir`: `dir/name.rs`,
/// else `dir/name/mod.rs`.
pub fn child_module_file(dir: &Path, name: &str) -> PathBuf {
    let flat = dir.join(format!("{name}.rs"));
    if flat.is_file() {
        flat
    } else {
        dir.join(name).join("mod.rs")
    }
}

/// `#[cfg(test)]` (also inside `all(…)`) on an item.
pub(crate) fn is_test_only(item: &syn::Item) -> bool {
    let attrs = match item {
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        _ => return false,
    };
    has_cfg_test(attrs)
}

/// `#[cfg(test)]` (also inside `all(…)`) among `attrs`.
pub(crate) fn has_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let mut test = false;
            let _ = a.parse_nested_meta(|meta| {
                if meta.path.is_ident("test") {
                    test = true;
                } else if meta.path.is_ident("all") {
                    meta.parse_nested_meta(|inner| {
                        test |= inner.path.is_ident("test");
                        Ok(())
                    })?;
                }
                Ok(())
            });
            test
        }
    })
}
