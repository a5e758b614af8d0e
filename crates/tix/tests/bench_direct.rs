//! `tix bench` end to end, direct architecture: the shared workload files replayed over
//! keep-alive HTTP through nginx in front of a real 3-node cluster, verified against the final
//! state; a node killed behind nginx mid-run (nginx retries its purchases elsewhere); and a
//! malformed file refused before anything starts; load above the in-flight cap refused by
//! nginx or by the node behind it. Needs nginx (Debian package);
//! without it the test says so and skips, unless `TIX_REQUIRE_SERVICES=1`.

use std::path::Path;
use std::process::Command;

use tix_testkit::require;

fn bench(workload: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tix"))
        .args(["bench", "--clients", "32", "--workload"])
        .arg(workload)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("tix runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// Checks that both assignment files pass through nginx and a 3-node cluster: the unnumbered
/// one sells exactly 20,000, the numbered one sells every seat once and refuses the 5,997
/// repeated attempts.
#[test]
fn shipped_workloads_pass_through_nginx_and_a_three_node_cluster() {
    for (file, sold, rejected) in [
        ("benchmark_unnumbered.txt", 20_000, None),
        ("benchmark_numbered.txt", 20_000, Some(5_997)),
    ] {
        let path = require::workload_file(file);
        if require::nginx().is_none() {
            return;
        }
        let (ok, text) = bench(&path);
        assert!(ok, "{file}: {text}");
        assert!(text.contains("PASS"), "{file}: {text}");
        assert!(text.contains("direct, 3 workers"), "{file}: {text}");
        assert!(
            text.contains(&format!("\n  sold                    {sold}\n")),
            "{file}: {text}"
        );
        if let Some(n) = rejected {
            assert!(
                text.contains(&format!("rejected_seat_taken      {n}")),
                "{file}: {text}"
            );
        }
    }
}

/// Checks that a malformed line stops the run before it starts, naming the file and line.
#[test]
fn a_malformed_workload_is_refused_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.txt");
    std::fs::write(&path, "# header\nBUY u1 r1\nBUY u2 seven r2\n").unwrap();
    let (ok, text) = bench(&path);
    assert!(!ok, "{text}");
    assert!(
        text.contains("bad.txt:3:") && text.contains("not a whole number"),
        "{text}"
    );
    assert!(!text.contains("tix bench:"), "no run may start: {text}");
}

/// A node behind nginx killed (SIGKILL) in the middle of a contended numbered sale: nginx marks
/// it down and retries its in-flight purchases on the other nodes (the request id makes the
/// retry safe), so every client still gets a definite answer and the run passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_behind_nginx_mid_run_loses_nothing() -> anyhow::Result<()> {
    use std::time::Duration;
    use tix_bench::replay::{Answer, CONCERT_CAPACITY, Transport, replay};
    use tix_bench::setup::{addresses_leader_first, start_cluster, start_nginx};
    use tix_testkit::client::{ApiClient, http_client};

    if require::nginx().is_none() {
        return Ok(());
    }
    let mut cluster = start_cluster(Path::new(env!("CARGO_BIN_EXE_tix")), 3).await?;
    let addrs = addresses_leader_first(&cluster).await?;
    let leader_url = format!("http://{}", addrs[0]);
    let api = ApiClient::login(
        http_client(32)?,
        &leader_url,
        "admin",
        &cluster.admin_password,
    )
    .await?;
    let nginx = start_nginx(addrs.clone())?;
    let front = ApiClient {
        base_url: nginx.url.clone(),
        ..api.clone()
    };
    let mut text = String::new();
    for i in 0..6_000 {
        let seat = if i % 4 == 0 { 1 + i % 50 } else { 100 + i };
        text.push_str(&format!("BUY c{i} {seat} r{i}\n"));
    }
    let workload = tix_bench::workload::parse(Path::new("kill.txt"), &text, CONCERT_CAPACITY)?;
    let run = {
        let (api, workload) = (api.clone(), workload.clone());
        tokio::spawn(async move {
            replay(&api, &Transport::Http(front), &workload, 32, false, None).await
        })
    };
    // Under way: a tenth of the seats sold (on a fast or a slow day alike).
    tix_bench::replay::wait_for_sales(&api, 300, Duration::from_secs(60)).await?;
    assert!(!run.is_finished(), "the kill must land during the run");
    // A follower: the nodes' addresses are leader first.
    let victim = cluster
        .nodes
        .values()
        .find(|n| n.http_addr == addrs[2])
        .map(|n| n.id)
        .expect("the third node");
    cluster.kill(victim)?;
    let report = run.await??;
    assert!(
        report.violations.is_empty(),
        "{:?}\nnginx: {}",
        &report.violations[..report.violations.len().min(10)],
        nginx.error_log()
    );
    let unknown = report
        .answers
        .iter()
        .filter(|a| matches!(a, Answer::Unknown(_)))
        .count();
    assert_eq!(unknown, 0);
    assert_eq!(report.sold(), workload.expected_sold(CONCERT_CAPACITY));
    assert!(
        report.rejections().keys().all(|r| r == "seat_taken"),
        "no request was refused for another reason (e.g. a 502 from nginx): {:?}",
        report.rejections()
    );
    Ok(())
}

/// Checks load shedding end to end through nginx with `tix bench overload`'s clients, with the
/// excess refused by nginx (the default) and by the node alone: with an in-flight cap of 5, four
/// clients and the benchmark's probe are all admitted; forty get 503s, every one with
/// `Retry-After`, and nothing else goes wrong — the refused purchases, retried with their
/// request ids, are sold afterwards and the node's count agrees with what the clients saw
/// (`measure` checks that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_through_nginx_is_refused_with_retry_after_by_nginx_or_the_node()
-> anyhow::Result<()> {
    use tix_bench::overload::{OverloadArgs, ShedAt, measure};

    if require::nginx().is_none() {
        return Ok(());
    }
    for shed_at in [ShedAt::Nginx, ShedAt::Node] {
        let args = OverloadArgs {
            nodes: 1,
            clients: 4,
            requests_in_flight_max: 5,
            factor: 10,
            seconds: 3,
            no_uncapped: true,
            rounds: 1,
            shed_at,
        };
        let (unloaded, overloaded) =
            measure(Path::new(env!("CARGO_BIN_EXE_tix")), &args, 5, 40).await?;
        assert!(unloaded.sold > 0, "{shed_at:?}: {unloaded:?}");
        assert_eq!(
            unloaded.refused, 0,
            "{shed_at:?}: 4 clients and the probe fit a cap of 5: {unloaded:?}"
        );
        assert!(overloaded.sold > 0, "{shed_at:?}: {overloaded:?}");
        assert!(
            overloaded.refused > 0,
            "{shed_at:?}: 40 clients never met the cap of 5"
        );
        assert_eq!(overloaded.refused_without_retry_after, 0, "{shed_at:?}");
        assert_eq!(overloaded.errors, 0, "{shed_at:?}: {overloaded:?}");
        // nginx's timing log saw the same refusals (the crowd's and the probe's, a client on
        // its own thread): answered by nginx itself when it sheds
        // (the node, behind a cap no larger than its own, never is over it), else each by the
        // node.
        let refused = overloaded.refused + overloaded.probe_refused_us.len();
        assert_eq!(
            overloaded.edge.refused_us.len(),
            refused,
            "{shed_at:?}: {overloaded:?}"
        );
        let by_node = match shed_at {
            ShedAt::Nginx => 0,
            ShedAt::Node => refused,
        };
        assert_eq!(
            overloaded.edge.refused_upstream_us.len(),
            by_node,
            "{shed_at:?}: {overloaded:?}"
        );
    }
    Ok(())
}

/// Checks `tix nginx-config`'s in-flight cap: by default the nodes' default caps summed, as given
/// with `--in-flight-max`, and none with 0 (the nodes shed alone).
#[test]
fn nginx_config_caps_what_it_lets_through_to_the_nodes() {
    let config = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_tix"))
            .args([
                "nginx-config",
                "--upstream",
                "10.0.0.1:8080",
                "--upstream",
                "10.0.0.2:8080",
            ])
            .args(extra)
            .output()
            .expect("tix runs");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let default_cap = 2 * tix_http::defaults::REQUESTS_IN_FLIGHT_MAX;
    assert_eq!(
        config(&[])
            .matches(&format!("limit_conn tix_in_flight {default_cap};"))
            .count(),
        2,
        "API and pages"
    );
    assert!(config(&["--in-flight-max", "300"]).contains("limit_conn tix_in_flight 300;"));
    let uncapped = config(&["--in-flight-max", "0"]);
    assert!(!uncapped.contains("limit_conn"), "{uncapped}");
    assert!(!uncapped.contains("@busy_api"), "{uncapped}");
}
