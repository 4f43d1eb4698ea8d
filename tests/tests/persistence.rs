//! A name server with `--storage sqlite:PATH` keeps every name across a restart, even after
//! `kill -9`; a database it cannot use is refused at start-up and left untouched.

use rmi_tests::{binary, run, stderr, stdout, temp_dir, NameServer};

fn register_names(ns: &NameServer) {
    for (name, uri, meta) in [
        ("one", "rmi:obj_1@127.0.0.1:4001", "a,b"),
        ("two", "rmi:obj_2@127.0.0.1:4002", ""),
        ("three.名前", "rmi:obj_3@[::1]:4003", "c"),
    ] {
        let output = ns.nsc(&["register", name, uri, "--meta", meta]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
}

fn listing(ns: &NameServer) -> String {
    let output = ns.nsc(&["--json", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn names_survive_a_restart_and_kill_9() {
    let dir = temp_dir("sqlite");
    let storage = format!("sqlite:{}", dir.path().join("names.db").display());
    let ns = NameServer::start_with(&["--storage", &storage]);
    register_names(&ns);
    let before = listing(&ns);
    assert_eq!(before.matches("rmi:obj_").count(), 3, "{before}");

    // A clean stop (Ctrl-C), then a restart.
    ns.interrupt();
    let ns = NameServer::start_with(&["--storage", &storage]);
    assert_eq!(listing(&ns), before);

    // A change, then kill -9 at once: it was on disk before the call returned.
    let output = ns.nsc(&["remove", "two"]);
    assert!(output.status.success());
    let output = ns.nsc(&["register", "four", "rmi:obj_4@127.0.0.1:4004"]);
    assert!(output.status.success());
    let expected = listing(&ns);
    let mut process = ns.process;
    process.kill_9();
    let ns = NameServer::start_with(&["--storage", &storage]);
    assert_eq!(listing(&ns), expected);
    assert!(expected.contains("\"four\"") && !expected.contains("\"two\""));
}

/// Starts `rmi-ns` on the database at `path`, which must refuse it; returns what it said.
fn refused(path: &std::path::Path) -> String {
    let storage = format!("sqlite:{}", path.display());
    let output = run(
        binary("rmi-ns").args(["--port", "0", "--storage", &storage]),
        "",
    );
    assert_eq!(output.status.code(), Some(1), "rmi-ns started on {storage}");
    stderr(&output)
}

#[test]
fn a_database_in_use_or_not_a_database_is_refused_untouched() {
    let dir = temp_dir("refused");
    let db = dir.path().join("names.db");
    let _holder = NameServer::start_with(&["--storage", &format!("sqlite:{}", db.display())]);
    let locked = refused(&db);
    assert!(locked.contains("locked by another name server"), "{locked}");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database\n").unwrap();
    let not_a_database = refused(&text);
    assert!(
        not_a_database.contains("not a SQLite database"),
        "{not_a_database}"
    );
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "not a database\n");

    let nowhere = refused(&dir.path().join("missing/dir/names.db"));
    assert!(nowhere.contains("cannot use"), "{nowhere}");
}
