//! Group chat across processes: `chat_server` and several `chat_client`s, each hosting the
//! callback the server calls with what the others say (a callback from server to client).

use rmi_tests::{binary, example, run, stdout, NameServer, Running};

fn member(ns: &NameServer, nick: &str) -> Running {
    let mut command = ns.client(example("chat_client"));
    command.args(["--nick", nick]);
    let mut client = Running::start(nick, command);
    client.expect_line(&format!("Joined lobby as {nick}; members: "));
    client
}

#[test]
fn every_line_reaches_every_other_member_and_a_vanished_one_is_dropped() {
    let ns = NameServer::start();
    let mut server = Running::start("chat_server", ns.client(example("chat_server")));
    let ready = server.expect_line("Chat ready. Object uri = rmi:obj_");
    let endpoint = ready.rsplit('@').next().unwrap().to_owned();
    let mut alice = member(&ns, "alice");
    let mut bob = member(&ns, "bob");
    alice.expect_line("* bob joined");
    let mut carol = member(&ns, "carol");
    alice.expect_line("* carol joined");
    bob.expect_line("* carol joined");

    alice.type_in("hello all\n");
    bob.expect_line("[alice] hello all");
    carol.expect_line("[alice] hello all");
    carol.type_in("hi alice\n");
    alice.expect_line("[carol] hi alice");
    bob.expect_line("[carol] hi alice");
    assert!(!alice.printed_so_far().iter().any(|l| l.contains("[alice]")));

    // Carol vanishes; the next line drops her, and the others go on.
    carol.kill_9();
    bob.type_in("still here?\n");
    alice.expect_line("[bob] still here?");
    server.expect_line("carol dropped from lobby");
    alice.expect_line("* carol left (unreachable)");
    alice.type_in("yes\n");
    bob.expect_line("[alice] yes");

    // At the end of her input, alice leaves and exits.
    assert!(alice.end_input().success());
    bob.expect_line("* alice left");
    server.expect_line("alice left lobby");

    // Each member's seat was an object made for it on joining; only bob's is left.
    let objects = stdout(&run(binary("rmi").args(["objects", &endpoint]), ""));
    let seats = objects.lines().filter(|l| l.ends_with("is a Seat")).count();
    assert_eq!(seats, 1, "{objects}");
}

#[test]
fn a_nick_already_in_the_room_is_refused() {
    let ns = NameServer::start();
    let mut server = Running::start("chat_server", ns.client(example("chat_server")));
    server.expect_line("Chat ready");
    let _dave = member(&ns, "dave");
    let output = rmi_tests::run(
        ns.client(example("chat_client")).args(["--nick", "dave"]),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        rmi_tests::stderr(&output).contains("'dave' is already in lobby; choose another nick"),
        "{}",
        rmi_tests::stderr(&output)
    );
}
