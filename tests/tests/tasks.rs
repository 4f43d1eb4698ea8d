//! Tasks (what Celery does) across processes: `task_worker`s register with the name server;
//! `task_submit`, or this process as a client, spreads tasks over them.

use std::collections::BTreeSet;
use std::time::Duration;

use rmi_examples::tasks::{TaskClient, TaskFailure};
use rmi_tests::{eventually, example, run, stderr, stdout, NameServer, Running};

fn worker(ns: &NameServer, name_ttl: &str) -> Running {
    let mut command = ns.client(example("task_worker"));
    command.args(["--name-ttl", name_ttl]);
    let mut worker = Running::start("task_worker", command);
    worker.expect_line("ready at rmi:obj_");
    worker
}

async fn client(ns: &NameServer) -> TaskClient {
    let endpoint = rmi::Endpoint::new("127.0.0.1", ns.port);
    TaskClient::new(rmi::locate_ns_at(&endpoint).await.unwrap())
}

/// The ids of the tasks a worker logged as `Task NAME[ID] <what>`.
fn logged(worker: &mut Running, what: &str) -> Vec<String> {
    worker
        .printed_so_far()
        .iter()
        .filter(|line| line.contains(what))
        .filter_map(|line| Some(line.split_once('[')?.1.split_once(']')?.0.to_owned()))
        .collect()
}

#[test]
fn task_submit_prints_the_id_then_the_result_and_the_worker_logs_it() {
    let ns = NameServer::start();
    let mut worker = worker(&ns, "10");
    let output = run(
        ns.client(example("task_submit")).args(["add", "5", "5"]),
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    let id = lines[0];
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(lines[1], "10");
    let logged = worker.expect_line(&format!("Task add[{id}] succeeded in "));
    assert!(logged.ends_with("s: 10"), "{logged}");

    let output = run(ns.client(example("task_submit")).args(["nope", "1"]), "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("no task is named 'nope'; the workers know: add, fail, mul, sleep"),
        "{}",
        stderr(&output)
    );
    let output = run(
        ns.client(example("task_submit"))
            .args(["fail", "on purpose"]),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("fail failed: on purpose"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn a_thousand_tasks_spread_over_all_workers_each_result_once() {
    let ns = NameServer::start();
    let mut workers: Vec<Running> = (0..3).map(|_| worker(&ns, "10")).collect();
    let client = client(&ns).await;
    let pending: Vec<_> = (0..1000i64)
        .map(|i| (i, client.delay("add", (i, i))))
        .collect();
    let mut ids = BTreeSet::new();
    for (i, task) in pending {
        ids.insert(task.id().to_owned());
        assert_eq!(task.get().await.unwrap(), serde_json::json!(2 * i));
    }
    assert_eq!(ids.len(), 1000, "task ids repeat");
    // Every worker ran some, and the workers ran each task exactly once between them.
    let mut ran = Vec::new();
    let all_logged = eventually(Duration::from_secs(10), || {
        ran = workers.iter_mut().map(|w| logged(w, "succeeded")).collect();
        ran.iter().map(Vec::len).sum::<usize>() >= 1000
    });
    assert!(
        all_logged,
        "the workers logged {} tasks",
        ran.iter().map(Vec::len).sum::<usize>()
    );
    for (n, tasks) in ran.iter().enumerate() {
        assert!(tasks.len() > 100, "worker {n} ran {} of 1000", tasks.len());
    }
    let logged_ids: BTreeSet<String> = ran.into_iter().flatten().collect();
    assert_eq!(logged_ids, ids);
}

// Multi-threaded: this test waits for a worker's output on the runtime's thread while the
// tasks are being sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_has_its_task_run_elsewhere() {
    let ns = NameServer::start();
    let mut doomed = worker(&ns, "1");
    let mut survivor = worker(&ns, "1");
    let client = client(&ns).await;
    let pending: Vec<_> = (0..6).map(|_| client.delay("sleep", (1500,))).collect();
    doomed.expect_line("Task sleep[");
    let in_hand = logged(&mut doomed, "received");
    doomed.kill_9();
    assert!(!in_hand.is_empty());
    for task in pending {
        assert_eq!(task.get().await.unwrap(), serde_json::json!(1500));
    }
    // The survivor logs before it answers, but its log reaches this process through a pipe:
    // wait for it.
    let mut rerun = Vec::new();
    let all_rerun = eventually(Duration::from_secs(10), || {
        rerun = logged(&mut survivor, "succeeded");
        in_hand.iter().all(|id| rerun.contains(id))
    });
    assert!(
        all_rerun,
        "tasks {in_hand:?} were not all run again: {rerun:?}"
    );
}

#[tokio::test]
async fn without_workers_a_task_says_so() {
    let ns = NameServer::start();
    let client = client(&ns).await;
    let failure = client.delay("add", (1, 2)).get().await.unwrap_err();
    assert!(matches!(failure, TaskFailure::NoWorkers), "{failure}");
    assert!(failure
        .to_string()
        .contains("cargo run --example task_worker"));
}
