//! The layer rules of ARCHITECTURE.md ("Layers"), checked on the source.
//!
//! Reads every `src/**/*.rs`, strips comments and string literals, and
//! collects every module path a file names: `use` trees and inline paths
//! starting with `crate::` (`labelhub::` in `main.rs`), `super::`, `self::`
//! or a child module the file declares. Two rules:
//!
//! 1. Between top-level modules, only the edges in [`ALLOWED`] exist. A
//!    module missing from the table fails with the edge that names it, so a
//!    new module is added to the table (and ARCHITECTURE.md) on purpose.
//! 2. Inside each family in [`NO_LOOPS`], the files (a child module with
//!    its own children counts as one, the family's `mod.rs` as another)
//!    form no import loop.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it may use. Lower layers are
/// strict (`bitmap` ← `brother` ← `render` ← `hub`); the upper layers list
/// what they use today.
const ALLOWED: &[(&str, &[&str])] = &[
    ("base64", &[]),
    ("bitmap", &[]),
    ("brother", &["bitmap"]),
    ("render", &["base64", "bitmap", "brother"]),
    ("hub", &["bitmap", "brother", "metrics", "render"]),
    ("http", &["metrics"]),
    ("auth", &["base64", "http", "hub"]),
    (
        "api",
        &[
            "auth",
            "base64",
            "brother",
            "build_info",
            "console",
            "discover",
            "http",
            "hub",
            "integrations",
            "metrics",
            "render",
        ],
    ),
    (
        "cli",
        &[
            "api",
            "auth",
            "bitmap",
            "brother",
            "discover",
            "http",
            "hub",
            "integrations",
            "metrics",
            "render",
        ],
    ),
    ("main", &["build_info", "cli"]),
    // Modules of branches in flight (issue 14 merge), with their edges then.
    ("build_info", &[]),
    ("metrics", &[]),
    ("discover", &["brother", "hub"]),
    ("integrations", &["base64", "brother", "hub"]),
    (
        "console",
        &["api", "auth", "brother", "http", "hub", "render"],
    ),
];

/// Module families whose files must not import each other in a loop.
const NO_LOOPS: &[&str] = &["bitmap", "brother", "render"];

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Dot,
    Other,
}

/// Tokens of `src` with their line numbers; comments, string, byte-string
/// and char literals and lifetimes are dropped.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let b = src.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let skip_string = |mut i: usize, line: &mut usize| -> usize {
        // at the opening quote of a normal string
        i += 1;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
            }
            if i < b.len() && b[i] == b'\n' {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if b[i] == b'\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            b'"' => i = skip_string(i, &mut line),
            b'\'' => {
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    // A lifetime, or a multi-byte char literal.
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    if b.get(i + 1 + ch_len) == Some(&b'\'') {
                        i += 2 + ch_len;
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' | b'b' if raw_or_byte_string(b, i).is_some() => {
                let (start, hashes) = raw_or_byte_string(b, i).unwrap_or((i, None));
                match hashes {
                    None => i = skip_string(start, &mut line),
                    Some(n) => {
                        let close: Vec<u8> = std::iter::once(b'"')
                            .chain(std::iter::repeat_n(b'#', n))
                            .collect();
                        let mut j = start + 1;
                        while j < b.len() && !b[j..].starts_with(&close) {
                            if b[j] == b'\n' {
                                line += 1;
                            }
                            j += 1;
                        }
                        i = j + close.len();
                    }
                }
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                out.push((Tok::Ident(src[start..i].to_string()), line));
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                out.push((Tok::PathSep, line));
                i += 2;
            }
            _ => {
                out.push((
                    match c {
                        b'{' => Tok::Open,
                        b'}' => Tok::Close,
                        b',' => Tok::Comma,
                        b';' => Tok::Semi,
                        b'*' => Tok::Star,
                        b'.' => Tok::Dot,
                        _ => Tok::Other,
                    },
                    line,
                ));
                i += 1;
            }
        }
    }
    out
}

/// At `r"`, `r#"`, `b"`, `br#"`...: the index of the opening quote and the
/// number of `#` (None for a non-raw byte string).
fn raw_or_byte_string(b: &[u8], i: usize) -> Option<(usize, Option<usize>)> {
    if i > 0 && (b[i - 1] == b'_' || b[i - 1].is_ascii_alphanumeric()) {
        return None;
    }
    let mut j = i;
    if b[j] == b'b' {
        j += 1;
        if b.get(j) == Some(&b'"') {
            return Some((j, None));
        }
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while b.get(j) == Some(&b'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&b'"')).then_some((j, Some(hashes)))
}

/// Parses a path (tree) at `t[i]`, appending every full path to `out`
/// (segments after `prefix`). Returns the index after it.
fn parse_tree(
    t: &[(Tok, usize)],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match t.get(i).map(|x| &x.0) {
            Some(Tok::Ident(s)) => {
                if s != "self" || path.is_empty() {
                    path.push(s.clone());
                }
                i += 1;
            }
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match t.get(i).map(|x| &x.0) {
                        Some(Tok::Close) | None => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        _ => {
                            let before = i;
                            i = parse_tree(t, i, path.clone(), out);
                            // skip `as alias` and anything else up to , or }
                            while !matches!(
                                t.get(i).map(|x| &x.0),
                                Some(Tok::Comma | Tok::Close) | None
                            ) {
                                i += 1;
                            }
                            if i == before {
                                i += 1;
                            }
                        }
                    }
                }
            }
            Some(Tok::Star) => {
                out.push(path);
                return i + 1;
            }
            _ => {
                out.push(path);
                return i;
            }
        }
        if matches!(t.get(i).map(|x| &x.0), Some(Tok::PathSep)) {
            i += 1;
        } else {
            out.push(path);
            return i;
        }
    }
}

struct File {
    module: Vec<String>,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `[a, b]`; `lib.rs` → `[]`;
/// `main.rs` → `[main]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !(stem == "mod" || (parts.is_empty() && stem == "lib")) {
        parts.push(stem.to_string());
    }
    parts
}

/// One reference: from module `from` (file, line) to absolute path `to`.
struct Use {
    file: String,
    line: usize,
    from: Vec<String>,
    to: Vec<String>,
}

fn collect_uses(src_dir: &Path) -> (Vec<File>, Vec<Use>) {
    let mut paths = Vec::new();
    rs_files(src_dir, &mut paths);
    let mut files = Vec::new();
    let mut uses = Vec::new();
    for path in paths {
        let rel_path = path.strip_prefix(src_dir).unwrap().to_path_buf();
        let rel = format!("src/{}", rel_path.display());
        let module = module_of(&rel_path);
        let is_main = module == ["main"];
        let src = std::fs::read_to_string(&path).unwrap();
        let t = lex(&src);
        // Child modules declared as files (`mod x;`).
        let children: BTreeSet<String> = t
            .windows(3)
            .filter_map(|w| match (&w[0].0, &w[1].0, &w[2].0) {
                (Tok::Ident(m), Tok::Ident(name), Tok::Semi) if m == "mod" => Some(name.clone()),
                _ => None,
            })
            .collect();
        // Inline modules (`mod tests { .. }`) change what `super` means.
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut i = 0;
        while i < t.len() {
            match &t[i].0 {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                Tok::Ident(m)
                    if m == "mod" && matches!(t.get(i + 2).map(|x| &x.0), Some(Tok::Open)) =>
                {
                    if let Some(Tok::Ident(name)) = t.get(i + 1).map(|x| &x.0) {
                        inline.push((name.clone(), depth));
                    }
                }
                _ => {}
            }
            let prev_sep = i > 0 && matches!(t[i - 1].0, Tok::PathSep | Tok::Dot);
            let starts = match (&t[i].0, t.get(i + 1).map(|x| &x.0)) {
                (Tok::Ident(s), Some(Tok::PathSep)) if !prev_sep || s == "crate" => {
                    let here: Vec<String> = module
                        .iter()
                        .cloned()
                        .chain(inline.iter().map(|(n, _)| n.clone()))
                        .collect();
                    match s.as_str() {
                        "crate" if !is_main => Some((Vec::new(), i + 2)),
                        "labelhub" if is_main => Some((Vec::new(), i + 2)),
                        "self" => Some((here, i + 2)),
                        "super" => {
                            let mut base = here;
                            let mut j = i;
                            while matches!(&t[j].0, Tok::Ident(s) if s == "super")
                                && matches!(t.get(j + 1).map(|x| &x.0), Some(Tok::PathSep))
                            {
                                base.pop();
                                j += 2;
                            }
                            Some((base, j))
                        }
                        name if inline.is_empty() && children.contains(name) => Some((here, i)),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some((base, at)) = starts {
                let mut found = Vec::new();
                let end = parse_tree(&t, at, base, &mut found);
                for to in found {
                    uses.push(Use {
                        file: rel.clone(),
                        line: t[i].1,
                        from: module.clone(),
                        to,
                    });
                }
                // Do not re-enter the tree, but keep counting braces.
                while i + 1 < end {
                    i += 1;
                    match &t[i].0 {
                        Tok::Open => depth += 1,
                        Tok::Close => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
            }
            i += 1;
        }
        files.push(File { module });
    }
    (files, uses)
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn imports_follow_the_layer_table() {
    let (files, uses) = collect_uses(&src_dir());
    let errors = layer_errors(&files, &uses);
    assert!(
        errors.is_empty(),
        "layer violations:\n{}",
        errors.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// Every module missing from [`ALLOWED`] and every edge it does not allow.
fn layer_errors(files: &[File], uses: &[Use]) -> BTreeSet<String> {
    let tops: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.module.first().map(String::as_str))
        .collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut errors = BTreeSet::new();
    for top in &tops {
        if !allowed.contains_key(top) {
            let edges: BTreeSet<String> = uses
                .iter()
                .filter(|u| u.from.first().map(String::as_str) == Some(*top))
                .filter_map(|u| {
                    u.to.first()
                        .filter(|t| tops.contains(t.as_str()) && *t != top)
                })
                .map(|t| format!("{top} → {t}"))
                .collect();
            errors.insert(format!(
                "module `{top}` is not in the layer table (tests/it/layers.rs ALLOWED, \
                 ARCHITECTURE.md); its edges: {}",
                edges.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for u in uses {
        let (Some(from), Some(to)) = (u.from.first(), u.to.first()) else {
            continue;
        };
        if from == to || !tops.contains(to.as_str()) {
            continue;
        }
        if let Some(ok) = allowed.get(from.as_str()) {
            if !ok.contains(&to.as_str()) {
                errors.insert(format!(
                    "{}:{}: `{from}` → `{to}` (`{}`) is not an allowed edge",
                    u.file,
                    u.line,
                    u.to.join("::")
                ));
            }
        }
    }
    errors
}

/// The node a module path belongs to inside `family`: `family::child` for
/// paths under a child module, `family` for the family's own `mod.rs`.
fn node(family: &str, path: &[String], children: &BTreeSet<String>) -> Option<String> {
    if path.first().map(String::as_str) != Some(family) {
        return None;
    }
    Some(match path.get(1) {
        Some(c) if children.contains(c) => format!("{family}::{c}"),
        _ => family.to_string(),
    })
}

/// Finds one cycle in `graph`, as the list of nodes.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_import_loops_inside_the_lower_layers() {
    let (files, uses) = collect_uses(&src_dir());
    let errors = loop_errors(&files, &uses);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// One loop per family of [`NO_LOOPS`] that has one, with the file and
/// line of every step.
fn loop_errors(files: &[File], uses: &[Use]) -> Vec<String> {
    let mut errors = Vec::new();
    for family in NO_LOOPS {
        let children: BTreeSet<String> = files
            .iter()
            .filter(|f| f.module.first().map(String::as_str) == Some(family))
            .filter_map(|f| f.module.get(1).cloned())
            .collect();
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut evidence: BTreeMap<(String, String), String> = BTreeMap::new();
        for u in uses {
            let (Some(a), Some(b)) = (
                node(family, &u.from, &children),
                node(family, &u.to, &children),
            ) else {
                continue;
            };
            if a != b {
                graph.entry(a.clone()).or_default().insert(b.clone());
                evidence
                    .entry((a, b))
                    .or_insert_with(|| format!("{}:{} ({})", u.file, u.line, u.to.join("::")));
            }
        }
        if let Some(cycle) = find_cycle(&graph) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    format!(
                        "{} → {} at {}",
                        w[0],
                        w[1],
                        evidence[&(w[0].clone(), w[1].clone())]
                    )
                })
                .collect();
            errors.push(format!("loop in `{family}`:\n  {}", steps.join("\n  ")));
        }
    }
    errors
}

/// The scanner itself: the paths it must find (and the ones it must not).
#[test]
fn the_scanner_sees_use_trees_inline_paths_and_super() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("layers-scanner");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("render")).unwrap();
    std::fs::write(
        dir.join("render/mod.rs"),
        "mod data;\npub use data::LabelData;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("render/data.rs"),
        r##"
use crate::{bitmap::Bitmap, brother::{media::{self, Geometry}, model}};
// use crate::hub; in a comment
const S: &str = "crate::api::x"; const R: &str = r#"crate::auth"#;
fn f<'a>(c: char) -> &'a str { let _ = '"'; crate::base64::encode(b"x"); super::Target }
mod tests { use super::*; }
"##,
    )
    .unwrap();
    let (files, uses) = collect_uses(&dir);
    assert!(layer_errors(&files, &uses).is_empty());
    let got: BTreeSet<String> = uses
        .iter()
        .map(|u| format!("{} -> {}", u.from.join("::"), u.to.join("::")))
        .collect();
    let want: BTreeSet<String> = [
        "render -> render::data::LabelData",
        "render::data -> bitmap::Bitmap",
        "render::data -> brother::media",
        "render::data -> brother::media::Geometry",
        "render::data -> brother::model",
        "render::data -> base64::encode",
        "render::data -> render::Target",
        "render::data -> render::data",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
}

/// The two rules fail where they should: an upward edge, an unknown module,
/// a loop between two files of a family (today's tree before issue 14 had
/// `render::data ↔ render::error`).
#[test]
fn the_rules_fail_on_an_upward_edge_an_unknown_module_and_a_loop() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("layers-violations");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("render")).unwrap();
    let files = [
        ("render/mod.rs", "mod data;\nmod error;\n"),
        ("render/data.rs", "use super::error::RenderError;\n"),
        ("render/error.rs", "use super::data::ContentType;\n"),
        ("brother.rs", "fn f() { crate::render::to_png(); }\n"),
        ("gadget.rs", "use crate::api::Api;\n"),
        ("api.rs", ""),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let (files, uses) = collect_uses(&dir);
    let layers = layer_errors(&files, &uses);
    assert!(
        layers.contains(
            "src/brother.rs:1: `brother` → `render` (`render::to_png`) is not an allowed edge"
        ),
        "{layers:?}"
    );
    assert!(
        layers.iter().any(
            |e| e.starts_with("module `gadget` is not in the layer table")
                && e.ends_with("its edges: gadget → api")
        ),
        "{layers:?}"
    );
    let loops = loop_errors(&files, &uses);
    assert_eq!(loops.len(), 1, "{loops:?}");
    assert!(loops[0].starts_with("loop in `render`:"), "{loops:?}");
    assert!(
        loops[0].contains("render::data → render::error at src/render/data.rs:1"),
        "{loops:?}"
    );
}
