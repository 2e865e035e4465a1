//! The shape ARCHITECTURE.md promises, checked on the source: data flows one
//! way between the modules, the trail knows nothing of the pipeline, and no
//! file grows past what a reader takes in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stages of a request's trip, in order. A stage may use the stages
/// after it, never one before it.
const TRIP: &[&str] = &[
    "server",
    "pipeline",
    "route",
    "profile",
    "identity",
    "directory",
    "authz",
    "budget",
    "trail",
    "forward",
];

/// Leaf modules: any module may use them, and they use no stage.
const LEAVES: &[&str] = &[
    "conn",
    "json",
    "digest",
    "setting",
    "wire",
    "metrics",
    "response",
    "request_id",
    "tls",
    "root",
];

/// Whether a file holds only tests or their fixtures (declared under
/// `#[cfg(test)]` by its parent), by the names this tree gives them.
fn test_only(file: &Path) -> bool {
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    matches!(
        name.as_ref(),
        "tests.rs" | "fixtures.rs" | "proptests.rs" | "test_support.rs"
    ) || name.starts_with("test_")
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file belongs to (`src/trail/verify.rs` → `trail`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The modules a file's non-test code names as `crate::name`; items of the
/// crate root (`crate::Body`, `crate::error_chain`, …) count as `root`.
fn uses(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let name: String = code[at + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        found.insert(if modules.contains(&name) {
            name
        } else {
            "root".to_owned()
        });
    }
    // `use crate::{a, b::c}` names several at once.
    for (at, _) in code.match_indices("crate::{") {
        let group = &code[at + 8..];
        let group = &group[..group.find('}').unwrap_or(group.len())];
        for part in group.split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                found.insert(name);
            }
        }
    }
    found
}

/// Module → the modules it uses, over all of `src/`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources(&src);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(&src, f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !test_only(f)) {
        let module = match module_of(&src, file).as_str() {
            "lib" => "root".to_owned(),
            other => other.to_owned(),
        };
        let text = std::fs::read_to_string(file).unwrap();
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(uses(&text, &modules).into_iter().filter(|m| *m != module));
    }
    graph
}

#[test]
fn no_stage_uses_one_earlier_in_the_trip_and_leaves_use_no_stage() {
    let graph = graph();
    let rank = |m: &str| TRIP.iter().position(|s| *s == m);
    let mut against = Vec::new();
    for (module, used) in &graph {
        for dep in used {
            let back = matches!((rank(module), rank(dep)), (Some(a), Some(b)) if b < a);
            let leaf_on_stage = LEAVES.contains(&module.as_str())
                && module != "root"
                && !LEAVES.contains(&dep.as_str());
            if back || leaf_on_stage {
                against.push(format!("{module} -> {dep}"));
            }
        }
    }
    assert!(
        against.is_empty(),
        "edges against the flow (ARCHITECTURE.md): {against:?}"
    );
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    // The crate root only declares modules and the Body/BoxError/error_chain
    // leaves; its re-export of `start` is not an edge anyone depends on.
    let edges = |m: &str| -> Vec<String> {
        graph
            .get(m)
            .map(|s| s.iter().filter(|d| *d != "root").cloned().collect())
            .unwrap_or_default()
    };
    fn visit(
        m: &str,
        edges: &dyn Fn(&str) -> Vec<String>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == m) {
            panic!("import cycle: {} -> {m}", path[at..].join(" -> "));
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_owned());
        for next in edges(m) {
            visit(&next, edges, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for module in graph.keys().filter(|m| *m != "root") {
        visit(module, &edges, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_trail_and_the_server_know_nothing_of_the_pipeline() {
    let graph = graph();
    let allowed: BTreeMap<&str, &[&str]> = [
        // `setting`: plain values of the configuration (how a vendor compares ids).
        ("trail", &["json", "digest", "setting", "root"][..]),
        ("server", &["conn", "tls", "root"][..]),
    ]
    .into_iter()
    .collect();
    for (module, may) in allowed {
        let used: Vec<&String> = graph[module]
            .iter()
            .filter(|d| !may.contains(&d.as_str()))
            .collect();
        assert!(used.is_empty(), "{module} uses {used:?}");
    }
}

#[test]
fn no_source_file_is_longer_than_700_lines_and_main_is_thin() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    for file in sources(&src) {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let limit = if file.ends_with("main.rs") { 150 } else { 700 };
        if lines > limit {
            long.push(format!("{}: {lines} lines", file.display()));
        }
    }
    assert!(long.is_empty(), "{long:?}");
    assert!(
        !src.join("vendor").exists(),
        "src/vendor reads as third-party code"
    );
}
