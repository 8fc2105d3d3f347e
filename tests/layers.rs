//! The layers' import rules, read from the source: the codec knows nothing of the room, the
//! room nothing of the Worker, and no two of the room's modules import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its text less doc comments, comments and test modules
/// (what is compiled into the crate).
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let entries = fs::read_dir(&path).expect("a source folder is readable");
            pending.extend(entries.map(|entry| entry.expect("a folder entry").path()));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = fs::read_to_string(&path).expect("a source file is readable");
            files.push((path, code_of(&text)));
        }
    }
    files
}

fn code_of(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn offenders(dir: &str, forbidden: &[&str]) -> Vec<String> {
    sources(dir)
        .into_iter()
        .flat_map(|(path, code)| {
            forbidden
                .iter()
                .filter(move |word| code.contains(*word))
                .map(move |word| format!("{} uses {word}", path.display()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_codec_imports_neither_the_room_nor_the_worker() {
    let found = offenders(
        "src/stomp",
        &["crate::room", "crate::edge", "worker::", "wasm_bindgen"],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_room_never_imports_the_worker() {
    let found = offenders(
        "src/room",
        &[
            "crate::edge",
            "worker::",
            "use worker",
            "wasm_bindgen",
            "js_sys",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_gateway_never_imports_the_worker() {
    let found = offenders(
        "src/gateway",
        &[
            "crate::edge",
            "worker::",
            "use worker",
            "wasm_bindgen",
            "js_sys",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_rooms_modules_import_one_another_in_no_loop() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/room");
    let module_of = |path: &Path| -> String {
        let relative = path.strip_prefix(&root).expect("under src/room");
        let first = relative.iter().next().expect("a file").to_string_lossy();
        first.trim_end_matches(".rs").to_owned()
    };
    let modules: BTreeSet<String> = sources("src/room")
        .iter()
        .map(|(path, _)| module_of(path))
        .filter(|module| module != "mod")
        .collect();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let room_root = fs::read_to_string(root.join("mod.rs")).expect("src/room/mod.rs");
    let reexported = reexports(&code_of(&room_root));
    for (path, code) in sources("src/room") {
        let from = module_of(&path);
        // `super::` names a sibling only from a module's own file or folder root.
        let depth = path.strip_prefix(&root).map_or(0, |p| p.iter().count());
        let sibling_prefix = depth == 1 || (depth == 2 && path.ends_with("mod.rs"));
        for to in &modules {
            let by_crate = code.contains(&format!("crate::room::{to}"));
            let by_super = sibling_prefix && code.contains(&format!("super::{to}"));
            if *to != from && (by_crate || by_super) {
                imports.entry(from.clone()).or_default().insert(to.clone());
            }
        }
        // What the room re-exports at its root is its module's too.
        for (name, to) in &reexported {
            let used = room_paths(&code).contains(name.as_str());
            if *to != from && used {
                imports.entry(from.clone()).or_default().insert(to.clone());
            }
        }
    }
    let loops = import_loops(&imports);
    assert!(
        loops.is_empty(),
        "modules importing one another round a loop: {loops:?}"
    );
    assert!(
        imports
            .get("engine")
            .is_some_and(|to| to.contains("broker")),
        "the scan sees imports (the engine uses the broker)"
    );
}

/// Every loop of imports, each once, as the modules round it from its smallest name
/// (`["http", "settings", "webhooks"]`: http imports settings, which imports webhooks, which
/// imports http).
fn import_loops(imports: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    fn walk(
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        loops: &mut BTreeSet<Vec<String>>,
    ) {
        let Some(last) = path.last().cloned() else {
            return;
        };
        for next in imports.get(&last).into_iter().flatten() {
            if *next == path[0] {
                loops.insert(path.clone());
            } else if *next > path[0] && !path.contains(next) {
                path.push(next.clone());
                walk(imports, path, loops);
                path.pop();
            }
        }
    }
    let mut loops = BTreeSet::new();
    for start in imports.keys() {
        walk(imports, &mut vec![start.clone()], &mut loops);
    }
    loops
}

#[test]
fn a_loop_of_three_modules_is_found_once() {
    let imports: BTreeMap<String, BTreeSet<String>> = [
        ("http", &["settings"][..]),
        ("settings", &["webhooks"]),
        ("webhooks", &["http", "storage"]),
        ("storage", &[]),
    ]
    .into_iter()
    .map(|(from, tos)| {
        (
            from.to_owned(),
            tos.iter().map(|to| (*to).to_owned()).collect(),
        )
    })
    .collect();
    let loops: Vec<Vec<String>> = import_loops(&imports).into_iter().collect();
    assert_eq!(loops, [["http", "settings", "webhooks"]]);
}

/// The names `src/room/mod.rs` re-exports, with the module each comes from
/// (`pub use broker::{Broker, Config}` gives `Broker` → `broker`, `Config` → `broker`).
fn reexports(code: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for statement in code.split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            if !item.is_empty() && item.chars().all(|c| c.is_alphanumeric() || c == '_') {
                names.insert(item.to_owned(), module.trim().to_owned());
            }
        }
    }
    names
}

/// The names a file takes from the room's root: `crate::room::Name` and
/// `use crate::room::{A, B}`.
fn room_paths(code: &str) -> BTreeSet<&str> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::room::") {
        let rest = &code[at + "crate::room::".len()..];
        let list = match rest.strip_prefix('{') {
            Some(braced) => braced.split('}').next().unwrap_or_default(),
            None => rest,
        };
        let stop = |c: char| !(c.is_alphanumeric() || c == '_' || c == ',' || c.is_whitespace());
        let list = if rest.starts_with('{') {
            list
        } else {
            list.split(stop)
                .next()
                .unwrap_or_default()
                .split(',')
                .next()
                .unwrap_or_default()
        };
        names.extend(
            list.split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty()),
        );
    }
    names
}
