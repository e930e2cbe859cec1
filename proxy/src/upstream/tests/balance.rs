//! Load balancing across real upstreams.

use std::collections::HashMap;

use super::*;

async fn three() -> [TestUpstream; 3] {
    [
        TestUpstream::start("0").await,
        TestUpstream::start("1").await,
        TestUpstream::start("2").await,
    ]
}

async fn tally(
    upstreams: &Upstreams,
    requests: usize,
    make: impl Fn(usize) -> Request<ProxyBody>,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in 0..requests {
        *counts
            .entry(send_id(upstreams, "c", make(i)).await)
            .or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn round_robin_is_exactly_fair() {
    let servers = three().await;
    let upstreams = upstreams(vec![cluster(
        "c",
        &addrs(&[&servers[0], &servers[1], &servers[2]]),
    )]);
    let counts = tally(&upstreams, 300, |_| get("/", "h")).await;
    assert_eq!(
        counts,
        HashMap::from([("0".into(), 100), ("1".into(), 100), ("2".into(), 100)])
    );
}

#[tokio::test]
async fn random_spreads_within_bounds() {
    let servers = three().await;
    let mut config = cluster("c", &addrs(&[&servers[0], &servers[1], &servers[2]]));
    config.lb_policy = LbPolicy::Random;
    let upstreams = upstreams(vec![config]);
    let n = 600.0;
    let sigma = f64::sqrt(n * (1.0 / 3.0) * (2.0 / 3.0));
    let counts = tally(&upstreams, 600, |_| get("/", "h")).await;
    for id in ["0", "1", "2"] {
        let count = counts.get(id).copied().unwrap_or(0) as f64;
        assert!(
            (count - n / 3.0).abs() <= 5.0 * sigma,
            "endpoint {id}: {count} of {n}"
        );
    }
}

#[tokio::test]
async fn least_request_prefers_the_idle_endpoint() {
    let servers = [
        TestUpstream::start("0").await,
        TestUpstream::start("1").await,
    ];
    let mut config = cluster("c", &addrs(&[&servers[0], &servers[1]]));
    config.lb_policy = LbPolicy::LeastRequest;
    let upstreams = Arc::new(upstreams(vec![config]));

    let hanging = {
        let upstreams = Arc::clone(&upstreams);
        tokio::spawn(async move { upstreams.send("c", get("/hang", "h")).await.map(|_| ()) })
    };
    // Whichever endpoint took the hanging request now has one in flight.
    let busy = tokio::select! {
        _ = servers[0].state.hang_received.notified() => "0",
        _ = servers[1].state.hang_received.notified() => "1",
    };
    let status = upstreams.status();
    let loads: Vec<usize> = status[0].endpoints.iter().map(|e| e.in_flight).collect();
    assert_eq!(loads.iter().sum::<usize>(), 1, "{loads:?}");

    let counts = tally(&upstreams, 20, |_| get("/", "h")).await;
    assert_eq!(
        counts.get(busy),
        None,
        "the busy endpoint got requests: {counts:?}"
    );
    assert_eq!(counts.values().sum::<usize>(), 20);
    hanging.abort();
}

#[tokio::test]
async fn ring_hash_keeps_a_key_on_one_endpoint() {
    let servers = three().await;
    let mut config = cluster("c", &addrs(&[&servers[0], &servers[1], &servers[2]]));
    config.lb_policy = LbPolicy::RingHash;
    config.hash_header = Some("x-user".into());
    let upstreams = upstreams(vec![config]);
    let with_user = |user: usize| {
        let mut req = get("/", "h");
        req.headers_mut()
            .insert("x-user", format!("user-{user}").parse().unwrap());
        req
    };
    let mut owners = HashMap::new();
    for user in 0..30 {
        let first = send_id(&upstreams, "c", with_user(user)).await;
        for _ in 0..3 {
            assert_eq!(
                send_id(&upstreams, "c", with_user(user)).await,
                first,
                "user-{user} moved"
            );
        }
        *owners.entry(first).or_insert(0) += 1;
    }
    assert!(
        owners.len() >= 2,
        "30 users all on one endpoint: {owners:?}"
    );
    // Requests without the header are spread (randomly) rather than failing.
    let spread = tally(&upstreams, 60, |_| get("/", "h")).await;
    assert!(spread.len() >= 2, "{spread:?}");
}
