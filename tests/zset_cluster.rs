//! Sorted sets on a cluster of three real processes, against a redis-server given the same
//! commands: members written through different nodes merge, and the commands whose keys
//! follow a `numkeys` count (`ZUNION`, `ZUNIONSTORE`, `ZINTERCARD`, ...) read and write every
//! key through its own replicas, whichever node coordinates.
//!
//! With `--replication-factor 1` each key lives on one node, so a command coordinated
//! elsewhere answers right only if the coordinator gathered the keys it named.

mod common;

use common::{Cluster, RedisServer, RespConn};

/// Sources spread over the ring: with twelve keys every node owns some.
const SOURCES: usize = 12;

#[test]
fn sorted_set_commands_over_keys_on_other_nodes_answer_as_redis() {
    let cluster = Cluster::start(3, &["--replication-factor", "1"]);
    let redis = RedisServer::start();
    let mut r = redis.conn();
    let mut c: Vec<RespConn> = (0..3).map(|i| cluster.conn(i)).collect();
    let keys: Vec<String> = (0..SOURCES).map(|i| format!("zc:{i}")).collect();
    let mut steps: Vec<Vec<String>> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        // Overlapping members with varied scores.
        for m in 0..5 {
            let score = ((i * 7 + m * 3) % 11).to_string();
            steps.push(vec![
                "ZADD".into(),
                key.clone(),
                score,
                format!("m{}", (i + m) % 9),
            ]);
        }
    }
    let numkeys = SOURCES.to_string();
    let with_keys = |head: &[&str], tail: &[&str]| -> Vec<String> {
        let mut step: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        step.extend(keys.iter().cloned());
        step.extend(tail.iter().map(|s| s.to_string()));
        step
    };
    steps.push(with_keys(&["ZUNION", &numkeys], &["WITHSCORES"]));
    steps.push(with_keys(
        &["ZUNION", &numkeys],
        &["AGGREGATE", "MAX", "WITHSCORES"],
    ));
    steps.push(with_keys(&["ZINTER", "2"], &[])[..4].to_vec());
    steps.push(with_keys(&["ZDIFF", &numkeys], &["WITHSCORES"]));
    steps.push(with_keys(&["ZINTERCARD", "3"], &[])[..5].to_vec());
    steps.push(with_keys(&["ZUNIONSTORE", "zc:union", &numkeys], &[]));
    steps.push(with_keys(&["ZINTERSTORE", "zc:inter", "2"], &[])[..5].to_vec());
    steps.push(with_keys(&["ZDIFFSTORE", "zc:diff", &numkeys], &[]));
    for key in ["zc:union", "zc:inter", "zc:diff"] {
        steps.push(
            ["ZRANGE", key, "0", "-1", "WITHSCORES"]
                .map(String::from)
                .to_vec(),
        );
    }
    steps.push(
        ["ZRANGESTORE", "zc:range", "zc:union", "2", "6", "BYSCORE"]
            .map(String::from)
            .to_vec(),
    );
    steps.push(
        ["ZRANGE", "zc:range", "0", "-1", "WITHSCORES"]
            .map(String::from)
            .to_vec(),
    );
    steps.push(["ZPOPMAX", "zc:union", "2"].map(String::from).to_vec());
    steps.push(["ZCARD", "zc:union"].map(String::from).to_vec());
    for (i, step) in steps.iter().enumerate() {
        let want = r.cmd(step);
        assert!(!want.is_error(), "redis-server answered {want} to {step:?}");
        // Every step through a different node than the one before.
        let got = c[i % 3].cmd(step);
        assert_eq!(got, want, "{step:?} through node {}", i % 3);
    }
    // Every node reads every result the same.
    for (node, conn) in c.iter_mut().enumerate() {
        for key in ["zc:union", "zc:inter", "zc:diff", "zc:range"] {
            let step = ["ZRANGE", key, "0", "-1", "WITHSCORES"];
            assert_eq!(conn.cmd(&step), r.cmd(&step), "{key} through node {node}");
        }
    }
}
