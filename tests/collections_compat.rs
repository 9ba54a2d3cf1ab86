//! Differential test of the collection families (and of the bitmap commands and `LCS`, whose
//! corpus shares the runner): each family's corpus in `tests/compat/` runs against a fresh
//! redis-server and a fresh ringcache side by side, over RESP2 and RESP3, replies compared line
//! by line (the syntax is `tests/redis_compat.rs`'s).
//!
//! Element order: ringcache keeps a hash's fields and a set's members in byte order, Redis
//! in insertion or hash-table order (neither documented), so whole-collection replies of
//! hashes and sets are compared `@sorted` (docs/redis-compatibility.md). Sorted sets are in
//! Redis's order (score, then member bytes), so their replies compare exactly.

mod common;

use common::{Script, run_side_by_side};

fn differential(name: &str, corpus: &'static str, proto: u8) {
    let script = Script::parse(corpus);
    assert!(
        script.len() >= 20,
        "the {name} corpus has only {} commands",
        script.len()
    );
    run_side_by_side(
        &format!("{name} "),
        &script,
        proto,
        &["--appendonly", "yes"],
    );
}

macro_rules! family {
    ($resp2:ident, $resp3:ident, $name:literal) => {
        #[test]
        fn $resp2() {
            differential($name, include_str!(concat!("compat/", $name, ".redis")), 2);
        }

        #[test]
        fn $resp3() {
            differential($name, include_str!(concat!("compat/", $name, ".redis")), 3);
        }
    };
}

family!(
    hash_commands_answer_as_redis_resp2,
    hash_commands_answer_as_redis_resp3,
    "hash"
);

family!(
    list_commands_answer_as_redis_resp2,
    list_commands_answer_as_redis_resp3,
    "list"
);

family!(
    set_commands_answer_as_redis_resp2,
    set_commands_answer_as_redis_resp3,
    "set"
);

family!(
    zset_commands_answer_as_redis_resp2,
    zset_commands_answer_as_redis_resp3,
    "zset"
);

family!(
    object_and_memory_answer_as_redis_resp2,
    object_and_memory_answer_as_redis_resp3,
    "object"
);

family!(
    transactions_answer_as_redis_resp2,
    transactions_answer_as_redis_resp3,
    "transaction"
);

family!(
    bitmap_commands_and_lcs_answer_as_redis_resp2,
    bitmap_commands_and_lcs_answer_as_redis_resp3,
    "bitmap"
);

family!(
    scripts_answer_as_redis_resp2,
    scripts_answer_as_redis_resp3,
    "scripting"
);

family!(
    rename_and_copy_answer_as_redis_resp2,
    rename_and_copy_answer_as_redis_resp3,
    "rename"
);
