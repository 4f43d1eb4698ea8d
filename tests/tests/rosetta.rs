//! The Rosetta Code variants: one server hosting `string` and `math`; the client lists their
//! methods, calls them, and gets a typed remote error, after which the server goes on.

use rmi_tests::{binary, example, run, stderr, stdout, NameServer, Running};

#[test]
fn the_rosetta_client_calls_both_objects_and_gets_a_typed_error() {
    let ns = NameServer::start();
    let mut server = Running::start("rosetta_server", ns.client(example("rosetta_server")));
    server.expect_line("Ready. string = rmi:obj_");
    server.expect_line("Ready. math = rmi:obj_");

    let output = run(&mut ns.client(example("rosetta_client")), "");
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines,
        [
            "rminame:string is a StringTools; its methods:",
            "  fn make_upper(text: String) -> String",
            "rminame:math is a Math; its methods:",
            "  fn div(a: i64, b: i64) -> Result<i64, MathError>",
            "Server responded: MY NAME IS EREN",
            "Server responded the result: 2",
            "Server raised: MathError::DivisionByZero { dividend: 1 }: division by zero: 1 / 0",
            "Server responded the result: 3",
        ]
    );

    // The same error through `rmi call`: JSON on stderr, exit code 1.
    let output = run(
        ns.client(binary("rmi"))
            .args(["call", "rminame:math", "div", "[1, 0]"]),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim(),
        r#"{"DivisionByZero":{"dividend":1}}"#
    );
    let output = run(
        ns.client(binary("rmi"))
            .args(["call", "rminame:string", "make_upper", "[\"ok\"]"]),
        "",
    );
    assert_eq!(stdout(&output), "\"OK\"\n");
}
