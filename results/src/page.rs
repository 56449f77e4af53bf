//! What every page shares: escaping, the `<head>` with its content security policy, the style
//! sheet, verdict colours, and relative links.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use checkers::Verdict;

/// The pages load nothing: no script, no font, no image but inline data. A browser blocks (and
/// logs) any request a page would make.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// HTML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --valid: #2e7d32; --invalid: #c62828; --unknown: #757575; --fault: #ff8f00; --ink: #1f2328; --muted: #5f6b76; --line: #e3e6ea; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0; background: #f4f5f7; color: var(--ink); }
main { max-width: 1080px; margin: 0 auto; padding: 16px 20px 64px; }
h1 { margin: 0; font-size: 26px; line-height: 1.25; }
h2 { font-size: 20px; margin: 0 0 12px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
a { color: #0b57d0; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.banner { color: #fff; padding: 18px 22px; margin: 16px 0; border-radius: 8px; }
.banner p { margin: 6px 0 0; opacity: 0.95; }
.banner a { color: #fff; }
.verdict-valid { background: var(--valid); }
.verdict-invalid { background: var(--invalid); }
.verdict-unknown { background: var(--unknown); }
.verdict-incomplete { background: #fff; border: 1px dashed var(--unknown); }
nav.toc { font-size: 14px; margin: -4px 0 8px; }
nav.toc a { margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
table.wide { width: 100%; font-size: 13px; }
table.wide th, table.wide td { padding: 4px 6px; }
ol.legend { font-size: 14px; padding-left: 28px; }
ol.legend li { margin: 3px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
thead th, tr.head th { background: #f6f7f9; border-bottom: 2px solid var(--line); font-weight: 600; }
tbody tr:nth-child(even) td { background: #fbfbfc; }
th[scope=row] { font-weight: 600; color: #333; white-space: nowrap; }
tr.group th { background: none; border-bottom: 1px solid var(--line); padding-top: 12px; font-size: 13px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
tr.in-group th[scope=row] { padding-left: 22px; font-weight: 500; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.forbidden { color: var(--invalid); font-weight: 600; }
.allowed { color: var(--muted); }
.bad { color: var(--invalid); font-weight: 600; }
.ok { color: var(--valid); }
tr.zero td, tr.zero td.forbidden { color: #8a949c; font-weight: normal; }
.cause { max-width: 460px; }
.more, .caption, .muted { color: var(--muted); font-size: 13px; }
.more { font-style: italic; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(128px, 1fr)); gap: 10px; margin: 12px 0 0; }
.figure { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.figure .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.figure .label { font-size: 13px; color: var(--muted); }
.figure.bad .value { color: var(--invalid); }
.figure.good .value { color: var(--valid); }
figure.plot { margin: 8px 0 20px; }
figure.plot svg { width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.not-recorded { border: 1px dashed var(--line); border-radius: 6px; padding: 18px; color: var(--muted); text-align: center; }
details > summary { cursor: pointer; font-weight: 600; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.scroll { overflow-x: auto; }
tr.row-valid td:first-child { border-left: 5px solid var(--valid); }
tr.row-invalid td:first-child { border-left: 5px solid var(--invalid); }
tr.row-unknown td:first-child { border-left: 5px solid var(--unknown); }
tr.row-incomplete td:first-child { border-left: 5px dashed var(--unknown); }
tr.row-invalid td { background: #fdecea !important; }
tr.row-valid td { background: #f1f8f1 !important; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: 0.03em; }
.pill.verdict-incomplete { color: var(--muted); }
.heatmaps { display: flex; flex-wrap: wrap; gap: 12px 20px; margin: 4px 0 12px; }
figure.heatmap { margin: 0; }
figure.heatmap svg { display: block; max-width: 100%; height: auto; }
td.settings { max-width: 300px; }
.setting { display: inline-block; background: #eef1f4; border-radius: 4px; padding: 0 5px; margin: 1px 0; font-size: 12px; white-space: nowrap; }
.seeds { font-size: 12px; }
td .range { display: block; font-size: 11px; color: var(--muted); }
.seeds a { margin-right: 2px; }
a.s-invalid { color: var(--invalid); font-weight: 600; }
a.s-unknown { color: var(--unknown); }
.trend { display: inline-flex; gap: 2px; vertical-align: middle; }
.trend a, .trend span { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
"#;

/// `<!DOCTYPE html>` to `<main>`: charset, the content security policy, title and style sheet.
pub(crate) fn head(title: &str) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(title)
    );
    html
}

pub(crate) const FOOT: &str = "</main>\n</body>\n</html>\n";

/// The CSS class of a verdict: `verdict-valid`, `verdict-invalid`, `verdict-unknown`.
pub(crate) fn verdict_class(verdict: Verdict) -> String {
    format!("verdict-{}", verdict.as_str())
}

/// A relative path as an href: percent-encodes what a URL would misread, and never yields a
/// scheme (`javascript:`…) or an absolute path.
pub(crate) fn relative_href(path: &str) -> String {
    let looks_like_scheme = path
        .split('/')
        .next()
        .is_some_and(|first| first.contains(':'));
    let encoded: String = path
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_owned(),
            '#' => "%23".to_owned(),
            '?' => "%3F".to_owned(),
            '%' => "%25".to_owned(),
            '\\' => "/".to_owned(),
            c => c.to_string(),
        })
        .collect();
    if looks_like_scheme || path.starts_with('/') {
        format!("./{}", encoded.trim_start_matches('/'))
    } else {
        encoded
    }
}

/// The path of `target` relative to the directory `from` (both made absolute against the current
/// directory; `..` where they diverge), with `/` separators.
pub(crate) fn relative_path(from: &Path, target: &Path) -> String {
    let absolute = |p: &Path| -> PathBuf {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        // Resolve symlinks where the path exists, then drop `.` and fold `..` lexically.
        let p = std::fs::canonicalize(&p).unwrap_or(p);
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    };
    let (from, target) = (absolute(from), absolute(target));
    let from: Vec<_> = from.components().collect();
    let target: Vec<_> = target.components().collect();
    let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(
        target[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn links_stay_relative() {
        assert_eq!(relative_href("nodes/n1.log"), "nodes/n1.log");
        assert_eq!(
            relative_href("javascript:alert(1)"),
            "./javascript:alert(1)"
        );
        assert_eq!(relative_href("/etc/passwd"), "./etc/passwd");
        assert_eq!(relative_href("clients/p 1#x.log"), "clients/p%201%23x.log");
    }

    #[test]
    fn relative_paths() {
        let base = Path::new("/nonexistent-kaos/a/b");
        assert_eq!(
            relative_path(base, Path::new("/nonexistent-kaos/a/b/c/r.html")),
            "c/r.html"
        );
        assert_eq!(
            relative_path(base, Path::new("/nonexistent-kaos/a/x/r.html")),
            "../x/r.html"
        );
        assert_eq!(relative_path(base, base), ".");
    }
}
