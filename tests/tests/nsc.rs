//! `rmi-nsc` against a real `rmi-ns`: every command, with tables and JSON, and its errors.

use rmi_tests::{stderr, stdout, NameServer};
use serde_json::Value;

fn ok(ns: &NameServer, args: &[&str]) -> String {
    let output = ns.nsc(args);
    assert!(
        output.status.success(),
        "rmi-nsc {args:?} failed: {}",
        stderr(&output)
    );
    stdout(&output)
}

fn json(ns: &NameServer, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(ns, &all)).expect("rmi-nsc --json prints JSON")
}

/// The one-line error of a command that must fail.
fn fails(ns: &NameServer, args: &[&str]) -> String {
    let output = ns.nsc(args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "rmi-nsc {args:?} should fail"
    );
    let error = stderr(&output);
    assert_eq!(error.lines().count(), 1, "not one line: {error}");
    assert!(error.starts_with("rmi-nsc: "), "{error}");
    error
}

#[test]
fn every_command_works_in_tables_and_json() {
    let ns = NameServer::start();
    assert!(ok(&ns, &["ping"]).contains("is alive"));
    assert_eq!(json(&ns, &["ping"])["ping"], "ok");

    ok(
        &ns,
        &[
            "register",
            "shop.tea",
            "rmi:obj_1@127.0.0.1:4001",
            "--meta",
            "drinks,hot",
        ],
    );
    ok(
        &ns,
        &[
            "register",
            "shop.coffee",
            "rmi:obj_2@127.0.0.1:4002",
            "--meta",
            "drinks",
        ],
    );
    ok(
        &ns,
        &[
            "register",
            "bank",
            "rmi:obj_3@127.0.0.1:4003",
            "--ttl",
            "60",
        ],
    );
    let registered = json(&ns, &["register", "shop.cake", "rmi:obj_4@127.0.0.1:4004"]);
    assert_eq!(registered["uri"], "rmi:obj_4@127.0.0.1:4004");

    let table = ok(&ns, &["list"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert_eq!(table.lines().count(), 5, "{table}");
    assert!(
        table.contains("shop.tea") && table.contains("drinks,hot"),
        "{table}"
    );
    let all = json(&ns, &["list"]);
    assert_eq!(all.as_object().unwrap().len(), 4);
    assert!(all["bank"]["ttl_left_secs"].as_f64().unwrap() > 50.0);
    assert!(all["shop.tea"]["ttl_left_secs"].is_null());

    let shops = json(&ns, &["list", "shop."]);
    assert_eq!(shops.as_object().unwrap().len(), 3);
    let matching = json(&ns, &["listmatching", "shop\\.c.*"]);
    let names: Vec<&String> = matching.as_object().unwrap().keys().collect();
    assert_eq!(names, ["shop.cake", "shop.coffee"]);

    let tea = json(&ns, &["lookup", "shop.tea"]);
    assert_eq!(tea["shop.tea"]["uri"], "rmi:obj_1@127.0.0.1:4001");
    assert!(ok(&ns, &["lookup", "shop.tea"]).contains("rmi:obj_1@127.0.0.1:4001"));

    let hot_drinks = json(&ns, &["yplookup", "--all", "drinks,hot"]);
    assert_eq!(hot_drinks.as_object().unwrap().len(), 1);
    let any = json(&ns, &["yplookup", "--any", "hot,drinks"]);
    assert_eq!(any.as_object().unwrap().len(), 2);

    ok(&ns, &["setmeta", "shop.cake", "sweet"]);
    let sweet = json(&ns, &["yplookup", "--any", "sweet"]);
    assert!(sweet.get("shop.cake").is_some());

    assert_eq!(json(&ns, &["remove", "bank"])["removed"], "bank");
    assert_eq!(json(&ns, &["removematching", "shop\\.c"])["removed"], 2);
    let left = json(&ns, &["list"]);
    let names: Vec<&String> = left.as_object().unwrap().keys().collect();
    assert_eq!(names, ["shop.tea"]);
    assert_eq!(
        ok(&ns, &["listmatching", "nothing"]),
        "(no registrations)\n"
    );
}

#[test]
fn errors_are_one_line_with_a_nonzero_exit() {
    let ns = NameServer::start();
    ok(&ns, &["register", "held", "rmi:obj_1@127.0.0.1:4001"]);
    let taken = fails(
        &ns,
        &["register", "held", "rmi:obj_2@127.0.0.1:4002", "--safe"],
    );
    assert!(
        taken.contains("already registered to rmi:obj_1@127.0.0.1:4001"),
        "{taken}"
    );
    // The same URI again is no conflict, and a plain register replaces.
    ok(
        &ns,
        &["register", "held", "rmi:obj_1@127.0.0.1:4001", "--safe"],
    );
    ok(&ns, &["register", "held", "rmi:obj_2@127.0.0.1:4002"]);

    assert!(fails(&ns, &["lookup", "nobody"]).contains("'nobody' is not registered"));
    assert!(fails(&ns, &["remove", "nobody"]).contains("not registered"));
    assert!(fails(&ns, &["register", "two words", "rmi:obj_1@h:1"]).contains("invalid name"));
    assert!(fails(&ns, &["register", "x", "rmi:obj_1"]).contains("invalid URI 'rmi:obj_1'"));
    assert!(fails(&ns, &["register", "x", "rmi:obj_1@h:1", "--ttl", "0"]).contains("time to live"));
    assert!(fails(&ns, &["listmatching", "("]).contains("invalid regular expression '('"));
    assert!(fails(&ns, &["setmeta", "nobody", "a"]).contains("not registered"));
    assert!(fails(&ns, &["setmeta", "held", "bad tag"]).contains("invalid metadata tag"));
    // Nothing was stored by any of them.
    let names = json(&ns, &["list"]);
    assert_eq!(names.as_object().unwrap().len(), 1);

    let port = ns.port.to_string();
    drop(ns);
    let down = rmi_tests::run(
        rmi_tests::binary("rmi-nsc").args(["--ns-port", &port, "ping"]),
        "",
    );
    assert_eq!(down.status.code(), Some(1));
    assert!(
        stderr(&down).contains("cannot reach the name server"),
        "{}",
        stderr(&down)
    );
}

#[test]
fn every_command_has_help() {
    for command in [
        "list",
        "listmatching",
        "lookup",
        "register",
        "remove",
        "removematching",
        "yplookup",
        "setmeta",
        "ping",
    ] {
        let help = rmi_tests::run(rmi_tests::binary("rmi-nsc").args([command, "--help"]), "");
        assert!(help.status.success(), "{command} --help");
        assert!(stdout(&help).contains("Usage: rmi-nsc"), "{command}");
    }
}
