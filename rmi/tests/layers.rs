//! The layer rule of `ARCHITECTURE.md`, checked: a module of `rmi/src` imports only from its
//! own layer or the ones below, the layers being the folders of `rmi/src`. An import is a
//! `crate::` or `rmi::` path (the crate names itself `rmi` too), or the code `#[expose]`
//! generates in the module (the `::rmi::` paths of the macro's source). The one exception,
//! the deliberate recursion, is listed in [`KNOWN_UPWARD`]; the test fails on any other
//! import that goes up, and on a listed one that is gone (so the list only shrinks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, bottom first: each is a folder of `rmi/src`, and its files and folders are
/// its modules (`src/server/daemon/` is the module `daemon`, in the layer `server`).
const LAYERS: &[&str] = &["base", "client", "server", "features"];

/// Imports that go up a layer, `(from, to)`: only the deliberate recursion, marked.
const KNOWN_UPWARD: &[(&str, &str)] = &[
    // The daemon's own object is exposed where the daemon hosts it, and the `connect` that
    // `#[expose]` gives its proxy resolves names through the name server, which binds through
    // that same object: the deliberate recursion, in generated code only. The client itself
    // imports neither (it is passed a `Directory`).
    ("daemon", "nameserver"),
];

/// Each module's layer (an index into [`LAYERS`]), read from the folders; a layer's own name
/// (`crate::client::ClientConfig`, re-exported by the layer) is in that layer too.
fn layers_of_modules(src: &Path) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for (index, layer) in LAYERS.iter().enumerate() {
        layers.insert((*layer).to_owned(), index);
        let folder = src.join(layer);
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("the layer folder {}: {e}", folder.display()));
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name != "mod.rs" {
                layers.insert(name.trim_end_matches(".rs").to_owned(), index);
            }
        }
    }
    layers
}

/// The crate root's re-exports: name → the top-level module it comes from.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let mut statement = String::new();
    for line in lib.lines().map(str::trim) {
        if !line.starts_with("pub use ") && statement.is_empty() {
            continue;
        }
        statement.push_str(line);
        statement.push(' ');
        if !line.ends_with(';') {
            continue;
        }
        let body = statement
            .trim_start_matches("pub use ")
            .trim_end_matches("; ");
        let module = body.split("::").next().unwrap_or_default().to_owned();
        let items = body.rsplit("::").next().unwrap_or_default();
        for item in items
            .trim_matches(|c| c == '{' || c == '}' || c == ';')
            .split(',')
        {
            let item = item.trim().trim_end_matches(';').trim();
            if !item.is_empty() {
                names.insert(item.to_owned(), module.clone());
            }
        }
        statement.clear();
    }
    names
}

/// What generated code calls, `rmi::__private`'s names: name → the module it comes from.
fn private_names(lib: &str) -> BTreeMap<String, String> {
    let start = lib
        .find("pub mod __private {")
        .expect("lib.rs has `pub mod __private`");
    let block = &lib[start..];
    let block = &block[..block.find("\n}").expect("the block ends")];
    root_names(&block.replace("pub use crate::", "pub use "))
}

/// The modules the code `#[expose]` generates refers to: its `::rmi::…` paths, read from the
/// macro's source.
fn generated_modules(
    roots: &BTreeMap<String, String>,
    private: &BTreeMap<String, String>,
    layers: &BTreeMap<String, usize>,
) -> BTreeSet<String> {
    let emit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rmi-macros/src/emit.rs");
    let emit = std::fs::read_to_string(&emit)
        .unwrap_or_else(|e| panic!("the macro's source {}: {e}", emit.display()));
    let found = paths_after(&emit, "::rmi::", roots, private, layers);
    assert!(found.contains("proxy"), "the scan found no generated path");
    found
}

/// The modules `code` names in paths that start with `prefix` (`crate::`, `rmi::`): a module,
/// a re-export of the crate root, or a name of `rmi::__private`.
fn paths_after(
    code: &str,
    prefix: &str,
    roots: &BTreeMap<String, String>,
    private: &BTreeMap<String, String>,
    layers: &BTreeMap<String, usize>,
) -> BTreeSet<String> {
    let resolve = |name: &str, within: &BTreeMap<String, String>| -> Option<String> {
        if layers.contains_key(name) {
            Some(name.to_owned())
        } else {
            // Re-exports of other crates (`rmi_macros::expose`) are no module of this one.
            within
                .get(name)
                .filter(|m| layers.contains_key(*m))
                .cloned()
        }
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        // `crate::` in `rmi_crate::` or `rmi::` in `my_rmi::` is another path.
        let before = code[..at].chars().next_back();
        if prefix != "::rmi::" && before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut rest = &code[at + prefix.len()..];
        let mut within = roots;
        if let Some(inner) = rest.strip_prefix("__private::") {
            (rest, within) = (inner, private);
        }
        let names: Vec<&str> = match rest.strip_prefix('{') {
            // `use crate::{a::X, b, c::{…}}`: the first segment of each top-level item.
            Some(group) => top_level_items(group),
            None => vec![rest],
        };
        for name in names {
            let name: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if let Some(module) = resolve(&name, within) {
                found.insert(module);
            }
        }
    }
    found
}

/// `code` with the text of its string literals left out (what a message says is no import).
fn without_strings(code: &str) -> String {
    let mut kept = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => {
                in_string = false;
                kept.push(c);
            }
            (true, _) => {}
            // A `'"'` character is no string.
            (false, '\'') if chars.peek() == Some(&'"') => {
                kept.push(c);
                kept.push(chars.next().unwrap_or_default());
            }
            (false, '"') => {
                in_string = true;
                kept.push(c);
            }
            (false, _) => kept.push(c),
        }
    }
    kept
}

/// What a module's code refers to, and what the code generated in it does.
struct Scan {
    roots: BTreeMap<String, String>,
    private: BTreeMap<String, String>,
    generated: BTreeSet<String>,
}

impl Scan {
    fn new(src: &Path, layers: &BTreeMap<String, usize>) -> Scan {
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let (roots, private) = (root_names(&lib), private_names(&lib));
        let generated = generated_modules(&roots, &private, layers);
        Scan {
            roots,
            private,
            generated,
        }
    }
}

/// The modules each module refers to through `crate::…` and `rmi::…` paths (in `use` or
/// inline; comments and strings left out), and through the code `#[expose]` generates in it.
fn imports(src: &Path, layers: &BTreeMap<String, usize>) -> BTreeMap<String, BTreeSet<String>> {
    let scan = Scan::new(src, layers);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let relative = path
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // `layer/module.rs` or `layer/module/…`; `lib.rs` and a layer's `mod.rs` only name
        // modules.
        let Some(from) = relative.split('/').nth(1) else {
            continue;
        };
        let from = from.trim_end_matches(".rs").to_owned();
        if from == "mod" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for to in referenced_modules(&text, &scan, layers) {
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// The modules `text` refers to, as [`imports`] counts them.
fn referenced_modules(
    text: &str,
    scan: &Scan,
    layers: &BTreeMap<String, usize>,
) -> BTreeSet<String> {
    // Unit tests (a `mod tests` at the end of a file) are not part of the library.
    let library = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let code: String = library
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = without_strings(&code);
    let mut found = BTreeSet::new();
    for prefix in ["crate::", "rmi::"] {
        found.extend(paths_after(
            &code,
            prefix,
            &scan.roots,
            &scan.private,
            layers,
        ));
    }
    if ["#[expose]", "#[crate::expose]", "#[rmi::expose]"]
        .iter()
        .any(|attribute| code.contains(attribute))
    {
        found.extend(scan.generated.iter().cloned());
    }
    found
}

/// The items of a `{…}` group (its text starting after `{`), split at its own commas.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0usize, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

#[test]
fn every_module_is_in_a_layer_folder() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "lib.rs" || LAYERS.contains(&name.as_str()),
            "src/{name} is in no layer: move it into one of {LAYERS:?}"
        );
    }
}

#[test]
fn no_module_imports_from_a_layer_above_but_the_known_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers_of_modules(&src);
    let edges = imports(&src, &layers);
    assert!(edges.contains_key("session"), "the scan found no imports");
    let mut upward = BTreeSet::new();
    for (from, targets) in &edges {
        for to in targets {
            if layers[to] > layers[from] {
                upward.insert((from.as_str(), to.as_str()));
            }
        }
    }
    let known: BTreeSet<(&str, &str)> = KNOWN_UPWARD.iter().copied().collect();
    let new: Vec<_> = upward.difference(&known).collect();
    assert!(
        new.is_empty(),
        "imports that go up a layer (see ARCHITECTURE.md, \"Layers\"): {new:?}"
    );
    let paid: Vec<_> = known.difference(&upward).collect();
    assert!(
        paid.is_empty(),
        "these imports no longer go up: remove them from KNOWN_UPWARD: {paid:?}"
    );
}

/// A cycle in `edges` (modules in order, the first repeated at the end), if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth first, iteratively: 0 unseen, 1 on the current path, 2 done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for start in edges.keys() {
        if state.get(start.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, Vec<&str>)> = Vec::new();
        let next = |m: &str| -> Vec<&str> {
            edges
                .get(m)
                .map(|t| t.iter().map(String::as_str).collect())
                .unwrap_or_default()
        };
        state.insert(start, 1);
        path.push((start, next(start)));
        while let Some((module, targets)) = path.last_mut() {
            let module = *module;
            match targets.pop() {
                Some(to) => match state.get(to).copied().unwrap_or(0) {
                    0 => {
                        state.insert(to, 1);
                        path.push((to, next(to)));
                    }
                    1 => {
                        let from = path.iter().position(|(m, _)| *m == to).unwrap();
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|(m, _)| (*m).to_owned()).collect();
                        cycle.push(to.to_owned());
                        return Some(cycle);
                    }
                    _ => {}
                },
                None => {
                    state.insert(module, 2);
                    path.pop();
                }
            }
        }
    }
    None
}

#[test]
fn no_cycle_of_imports_but_through_the_marked_recursion() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers_of_modules(&src);
    let mut edges = imports(&src, &layers);
    for (from, to) in KNOWN_UPWARD {
        edges.get_mut(*from).map(|targets| targets.remove(*to));
    }
    assert_eq!(
        find_cycle(&edges),
        None,
        "modules that import each other (ARCHITECTURE.md, \"Layers\")"
    );
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let edges = |pairs: &[(&str, &str)]| {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in pairs {
            edges
                .entry((*from).to_owned())
                .or_default()
                .insert((*to).to_owned());
        }
        edges
    };
    assert_eq!(
        find_cycle(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    let cycle = find_cycle(&edges(&[("a", "b"), ("b", "c"), ("c", "b")])).unwrap();
    assert_eq!(cycle, ["b", "c", "b"]);
}

#[test]
fn the_scan_sees_paths_groups_re_exports_and_generated_code() {
    let layers = BTreeMap::from(
        [
            "error",
            "wire",
            "client",
            "proxy",
            "daemon",
            "nameserver",
            "expose",
            "uri",
        ]
        .map(|module| (module.to_owned(), 0)),
    );
    let scan = Scan {
        roots: BTreeMap::from([("locate_ns".to_owned(), "nameserver".to_owned())]),
        private: BTreeMap::from([("Call".to_owned(), "expose".to_owned())]),
        generated: BTreeSet::from(["proxy".to_owned(), "expose".to_owned()]),
    };
    let found = |text: &str| -> Vec<String> {
        referenced_modules(text, &scan, &layers)
            .into_iter()
            .collect()
    };
    let text = "use crate::{wire::{Fault, Invoke}, error};\n\
                // crate::daemon in a comment\n\
                fn f() { crate::locate_ns(); crate::proxy::Proxy::x(); crate::client::C; }";
    assert_eq!(
        found(text),
        ["client", "error", "nameserver", "proxy", "wire"]
    );
    let text = "fn g() -> rmi::uri::Uri { rmi::__private::Call; my_rmi::daemon::X; \
                \"an rmi::daemon in a message\"; '\"'; rmi::error::E }";
    assert_eq!(found(text), ["error", "expose", "uri"]);
    assert_eq!(
        found("#[crate::expose]\npub trait T {}"),
        ["expose", "proxy"]
    );
}
