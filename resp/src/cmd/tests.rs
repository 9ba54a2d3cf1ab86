//! Parsing tests for every command family; the expected texts were checked against
//! redis-server 7.0.15.

use bytes::Bytes;

use super::super::*;
use crate::level::Level;
use crate::parser::split_inline;

fn parse(line: &str) -> Result<Request, CommandError> {
    Request::parse(split_inline(line.as_bytes()).expect("test line splits"))
}

fn cmd(line: &str) -> Command {
    let request = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(request.level, None, "{line}");
    request.command
}

fn err(line: &str) -> String {
    match parse(line) {
        Ok(r) => panic!("{line}: expected an error, got {r:?}"),
        Err(e) => e.to_string(),
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn set(key: &str, value: &str) -> Set {
    Set {
        key: b(key),
        value: b(value),
        condition: None,
        get: false,
        expiry: SetExpiry::Clear,
    }
}

const SYNTAX: &str = "ERR syntax error";
const NOT_INT: &str = "ERR value is not an integer or out of range";

// ----- the table

#[test]
fn command_names_are_case_insensitive() {
    assert_eq!(cmd("get k"), Command::Get(b("k")));
    assert_eq!(cmd("GeT k"), Command::Get(b("k")));
    assert_eq!(cmd("PING"), Command::Ping(None));
}

#[test]
fn unknown_commands_list_their_first_arguments_like_redis() {
    assert_eq!(
        err("foo a b"),
        "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        err("foo"),
        "ERR unknown command 'foo', with args beginning with: "
    );
    let long = "x".repeat(200);
    let text = err(&format!("{long} {long} y"));
    let expected_args = format!("'{}' ", "x".repeat(128));
    assert_eq!(
        text,
        format!(
            "ERR unknown command '{}', with args beginning with: {expected_args}",
            &long[..128]
        )
    );
    assert_eq!(
        err("foo \"a\\r\\nb\""),
        "ERR unknown command 'foo', with args beginning with: 'a  b' ",
        "CR and LF become spaces"
    );
    let many: Vec<String> = (0..100).map(|i| format!("arg{i:03}")).collect();
    let text = err(&format!("foo {}", many.join(" ")));
    let args = text.split("with args beginning with: ").nth(1).unwrap();
    // Arguments are added while the list is under 128 bytes, each cut to what is left
    // (checked against redis-server: 14 whole arguments, then 'ar').
    assert_eq!(args.len(), 131);
    assert!(args.ends_with("'arg013' 'ar' "));
}

#[test]
fn wrong_arity_names_the_command() {
    for (line, name) in [
        ("GET", "get"),
        ("GET a b", "get"),
        ("SET k", "set"),
        ("PING a b", "ping"),
        ("ECHO", "echo"),
        ("SELECT", "select"),
        ("RESET x", "reset"),
        ("DBSIZE x", "dbsize"),
        ("TIME x", "time"),
        ("MSET a", "mset"),
        ("MSET a b c", "mset"),
        ("MSETNX a b c", "msetnx"),
        ("EXPIRE k", "expire"),
        ("KEYS a b", "keys"),
        ("SCAN", "scan"),
        ("RANDOMKEY x", "randomkey"),
        ("GETRANGE k 0", "getrange"),
        ("SUBSTR k 0", "substr"),
        ("SETEX k 1", "setex"),
        ("DEL", "del"),
    ] {
        assert_eq!(
            err(line),
            format!("ERR wrong number of arguments for '{name}' command")
        );
    }
}

#[test]
fn name_and_access_match_the_table() {
    let cases = [
        ("GET k", "get", Access::Read),
        ("SETEX k 1 v", "setex", Access::Write),
        ("DECR k", "decr", Access::Write),
        ("TOUCH k", "touch", Access::Read),
        ("PTTL k", "pttl", Access::Read),
        ("PEXPIREAT k 1", "pexpireat", Access::Write),
        ("CLIENT SETNAME x", "client", Access::None),
        ("CONFIG GET *", "config", Access::None),
        ("FLUSHDB", "flushdb", Access::None),
        ("SCAN 0", "scan", Access::None),
        ("COMMAND", "command", Access::None),
    ];
    for (line, name, access) in cases {
        let request = parse(line).unwrap();
        assert_eq!(
            (request.spec.name, request.spec.access()),
            (name, access),
            "{line}"
        );
        assert_eq!(TABLE[request.index], *request.spec, "{line}");
    }
    assert!(TABLE.iter().any(|spec| spec.name == "incrbyfloat"));
}

#[test]
fn every_row_is_found_by_its_name_in_any_case_and_nothing_else_is() {
    for (index, spec) in TABLE.iter().enumerate() {
        let found = lookup(spec.name.as_bytes()).expect(spec.name);
        assert_eq!((found.index, found.spec), (index, spec));
        let upper = spec.name.to_ascii_uppercase();
        assert_eq!(lookup(upper.as_bytes()).map(|e| e.index), Some(index));
    }
    for name in [
        "",
        "g",
        "gett",
        "getrangex",
        "incrbyfloatincrbyfloat",
        "hello\0",
    ] {
        assert!(lookup(name.as_bytes()).is_none(), "{name}");
    }
}

#[test]
fn flags_are_listed_in_redis_order_whatever_order_they_were_given_in() {
    let flags = Flags::ALLOW_BUSY | Flags::FAST | Flags::WRITE | Flags::NO_AUTH;
    assert_eq!(
        flags.names().collect::<Vec<_>>(),
        ["write", "fast", "no_auth", "allow_busy"]
    );
    assert!(flags.contains(Flags::FAST | Flags::WRITE));
    assert!(!flags.contains(Flags::DENYOOM));
    assert_eq!(Flags::NONE.names().count(), 0);
}

#[test]
fn containers_route_by_their_subcommand_s_key_and_report_none() {
    for name in ["object", "memory"] {
        let spec = TABLE.iter().find(|s| s.name == name).unwrap();
        assert!(
            !spec.keys.has_keys(),
            "{name} reports no keys, as Redis's container"
        );
        let args = |line: &str| -> Vec<Bytes> {
            line.split(' ').map(|a| Bytes::from(a.to_owned())).collect()
        };
        let key_of = |line: &str| spec.route.keys(&args(line)).cloned().collect::<Vec<_>>();
        assert_eq!(key_of("object encoding k"), [Bytes::from("k")]);
        assert!(key_of("object help").is_empty());
    }
}

#[test]
fn only_key_commands_take_a_level_and_write_flags_make_writes() {
    for spec in TABLE {
        let expected = match (spec.route.has_keys(), spec.flags.contains(Flags::WRITE)) {
            (false, _) => Access::None,
            (true, true) => Access::Write,
            (true, false) => Access::Read,
        };
        assert_eq!(spec.access(), expected, "{}", spec.name);
        assert!(
            !spec.keys.has_keys() || !matches!(spec.family, Family::Connection | Family::Server),
            "{}",
            spec.name
        );
        // Redis flags exactly the commands whose keys follow a count as `movablekeys`.
        assert_eq!(
            spec.flags.contains(Flags::MOVABLE_KEYS),
            spec.keys.numkeys_at > 0,
            "{}",
            spec.name
        );
        assert!(
            !(spec.flags.contains(Flags::WRITE) && spec.flags.contains(Flags::READONLY)),
            "{}",
            spec.name
        );
    }
}

// ----- CONSISTENCY suffix and command

#[test]
fn a_trailing_consistency_level_is_taken_off_key_commands() {
    let r = parse("GET k CONSISTENCY one").unwrap();
    assert_eq!(
        (r.command, r.level),
        (Command::Get(b("k")), Some(Level::One))
    );
    let r = parse("SET k v EX 10 consistency QUORUM").unwrap();
    assert_eq!(r.level, Some(Level::Quorum));
    assert!(matches!(
        r.command,
        Command::Set(Set {
            expiry: SetExpiry::At(_),
            ..
        })
    ));
    let r = parse("MSET a b CONSISTENCY ONE").unwrap();
    assert_eq!(
        (r.command, r.level),
        (Command::MSet(vec![(b("a"), b("b"))]), Some(Level::One))
    );
    let r = parse("DEL a CONSISTENCY 2").unwrap();
    assert_eq!(r.level, Some(Level::Count(2)));
    let r = parse("SET k v CONSISTENCY ANY").unwrap();
    assert_eq!(r.level, Some(Level::Any));
}

#[test]
fn consistency_stays_an_argument_when_the_command_would_lack_arguments() {
    assert_eq!(
        cmd("SET CONSISTENCY ONE"),
        Command::Set(set("CONSISTENCY", "ONE"))
    );
    assert_eq!(
        err("GET CONSISTENCY ONE"),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(cmd("ECHO CONSISTENCY"), Command::Echo(b("CONSISTENCY")));
    assert_eq!(
        err("PING CONSISTENCY ONE"),
        "ERR wrong number of arguments for 'ping' command"
    );
    assert_eq!(cmd("KEYS CONSISTENCY"), Command::Keys(b("CONSISTENCY")));
}

#[test]
fn a_bad_or_read_any_level_is_refused() {
    assert!(err("GET k CONSISTENCY FOO").starts_with("ERR invalid consistency level 'FOO'"));
    assert!(err("GET k CONSISTENCY ANY").starts_with("ERR consistency level ANY is for writes"));
    assert!(err("GET k CONSISTENCY 0").starts_with("ERR invalid consistency level '0'"));
}

#[test]
fn the_consistency_command_shows_and_sets_defaults() {
    assert_eq!(
        cmd("CONSISTENCY"),
        Command::Consistency(ConsistencyCommand::Show)
    );
    assert_eq!(
        cmd("consistency one"),
        Command::Consistency(ConsistencyCommand::SetBoth(Level::One))
    );
    assert_eq!(
        cmd("CONSISTENCY READ all"),
        Command::Consistency(ConsistencyCommand::SetRead(Level::All))
    );
    assert_eq!(
        cmd("CONSISTENCY WRITE ANY"),
        Command::Consistency(ConsistencyCommand::SetWrite(Level::Any))
    );
    assert!(err("CONSISTENCY ANY").starts_with("ERR consistency level ANY is for writes"));
    assert!(err("CONSISTENCY READ ANY").starts_with("ERR consistency level ANY is for writes"));
    assert!(err("CONSISTENCY x").starts_with("ERR invalid consistency level 'x'"));
    assert_eq!(err("CONSISTENCY BOTH ONE"), SYNTAX);
    assert_eq!(
        err("CONSISTENCY READ ONE x"),
        "ERR wrong number of arguments for 'consistency' command"
    );
}

// ----- connection

#[test]
fn ping_echo_select_auth_quit_reset_parse() {
    assert_eq!(cmd("PING hi"), Command::Ping(Some(b("hi"))));
    assert_eq!(cmd("ECHO hi"), Command::Echo(b("hi")));
    assert_eq!(cmd("SELECT 0"), Command::Select(0));
    assert_eq!(cmd("SELECT -1"), Command::Select(-1));
    assert_eq!(err("SELECT abc"), NOT_INT);
    assert_eq!(err("SELECT 2147483648"), NOT_INT);
    assert_eq!(
        cmd("AUTH pw"),
        Command::Auth {
            username: None,
            password: b("pw")
        }
    );
    assert_eq!(
        cmd("AUTH u pw"),
        Command::Auth {
            username: Some(b("u")),
            password: b("pw")
        }
    );
    assert_eq!(err("AUTH a b c"), SYNTAX);
    assert_eq!(
        err("AUTH"),
        "ERR wrong number of arguments for 'auth' command"
    );
    assert_eq!(cmd("QUIT x"), Command::Quit);
    assert_eq!(cmd("RESET"), Command::Reset);
}

#[test]
fn hello_checks_version_then_options() {
    assert_eq!(cmd("HELLO"), Command::Hello(Hello::default()));
    assert_eq!(
        cmd("HELLO 3 auth u p setname app"),
        Command::Hello(Hello {
            protover: Some(3),
            auth: Some((b("u"), b("p"))),
            setname: Some(b("app")),
        })
    );
    assert_eq!(
        err("HELLO abc"),
        "ERR Protocol version is not an integer or out of range"
    );
    assert_eq!(err("HELLO 4"), "NOPROTO unsupported protocol version");
    assert_eq!(err("HELLO 1"), "NOPROTO unsupported protocol version");
    assert_eq!(err("HELLO 3 foo"), "ERR Syntax error in HELLO option 'foo'");
    assert_eq!(
        err("HELLO 3 AUTH a"),
        "ERR Syntax error in HELLO option 'AUTH'"
    );
    assert_eq!(
        err("HELLO 2 SETNAME"),
        "ERR Syntax error in HELLO option 'SETNAME'"
    );
    assert_eq!(
        err("HELLO 3 SETNAME \"a b\""),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
}

#[test]
fn client_subcommands_parse_with_redis_errors() {
    assert_eq!(cmd("CLIENT ID"), Command::Client(ClientCommand::Id));
    assert_eq!(
        cmd("client setname app"),
        Command::Client(ClientCommand::SetName(b("app")))
    );
    assert_eq!(
        cmd("CLIENT SETNAME \"\""),
        Command::Client(ClientCommand::SetName(Bytes::new()))
    );
    assert_eq!(
        cmd("CLIENT GETNAME"),
        Command::Client(ClientCommand::GetName)
    );
    assert_eq!(cmd("CLIENT INFO"), Command::Client(ClientCommand::Info));
    assert_eq!(cmd("CLIENT HELP"), Command::Client(ClientCommand::Help));
    assert_eq!(
        cmd("CLIENT SETINFO lib-name redis-py"),
        Command::Client(ClientCommand::SetInfo {
            lib_name: true,
            value: b("redis-py")
        })
    );
    assert_eq!(
        cmd("CLIENT SETINFO LIB-VER 5.0"),
        Command::Client(ClientCommand::SetInfo {
            lib_name: false,
            value: b("5.0")
        })
    );
    assert_eq!(
        cmd("CLIENT NO-EVICT on"),
        Command::Client(ClientCommand::NoEvict(true))
    );
    assert_eq!(
        cmd("CLIENT NO-TOUCH OFF"),
        Command::Client(ClientCommand::NoTouch(false))
    );
    assert_eq!(
        err("CLIENT"),
        "ERR wrong number of arguments for 'client' command"
    );
    assert_eq!(
        err("CLIENT foo"),
        "ERR unknown subcommand 'foo'. Try CLIENT HELP."
    );
    assert_eq!(
        err("client Foo x"),
        "ERR unknown subcommand 'Foo'. Try CLIENT HELP."
    );
    assert_eq!(
        err("CLIENT SETNAME"),
        "ERR wrong number of arguments for 'client|setname' command"
    );
    assert_eq!(
        err("CLIENT SETNAME x y"),
        "ERR wrong number of arguments for 'client|setname' command"
    );
    assert_eq!(
        err("CLIENT GETNAME x"),
        "ERR wrong number of arguments for 'client|getname' command"
    );
    assert_eq!(
        err("CLIENT ID x"),
        "ERR wrong number of arguments for 'client|id' command"
    );
    assert_eq!(
        err("CLIENT HELP x"),
        "ERR wrong number of arguments for 'client|help' command"
    );
    assert_eq!(
        err("CLIENT KILL"),
        "ERR wrong number of arguments for 'client|kill' command"
    );
    assert_eq!(
        err("CLIENT NO-EVICT"),
        "ERR wrong number of arguments for 'client|no-evict' command"
    );
    assert_eq!(
        err("CLIENT SETNAME \"a b\""),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        err("CLIENT SETINFO lib-foo x"),
        "ERR Unrecognized option 'lib-foo'"
    );
    assert_eq!(
        err("CLIENT SETINFO Lib-Name \"a b\""),
        "ERR Lib-Name cannot contain spaces, newlines or special characters."
    );
    assert_eq!(err("CLIENT NO-EVICT maybe"), SYNTAX);
}

#[test]
fn client_list_and_kill_filters_parse() {
    assert_eq!(
        cmd("CLIENT LIST"),
        Command::Client(ClientCommand::List { ids: vec![] })
    );
    assert_eq!(
        cmd("CLIENT LIST TYPE normal"),
        Command::Client(ClientCommand::List { ids: vec![] })
    );
    assert_eq!(
        cmd("CLIENT LIST TYPE pubsub"),
        Command::Client(ClientCommand::List {
            ids: vec![u64::MAX]
        })
    );
    assert_eq!(
        cmd("CLIENT LIST ID 1 2 -1"),
        Command::Client(ClientCommand::List {
            ids: vec![1, 2, u64::MAX]
        })
    );
    assert_eq!(err("CLIENT LIST x"), SYNTAX);
    assert_eq!(err("CLIENT LIST TYPE"), SYNTAX);
    assert_eq!(err("CLIENT LIST ID abc"), "ERR Invalid client ID");
    assert_eq!(err("CLIENT LIST TYPE foo"), "ERR Unknown client type 'foo'");

    let kill = |line| match cmd(line) {
        Command::Client(ClientCommand::Kill(k)) => k,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        kill("CLIENT KILL 1.2.3.4:5"),
        ClientKill {
            legacy: true,
            addr: Some(b("1.2.3.4:5")),
            ..ClientKill::default()
        }
    );
    assert_eq!(
        kill("CLIENT KILL ID 7 LADDR 1.2.3.4:5 SKIPME no"),
        ClientKill {
            legacy: false,
            id: Some(7),
            addr: None,
            laddr: Some(b("1.2.3.4:5")),
            skip_me: false
        }
    );
    assert!(
        kill("CLIENT KILL ADDR a:1").skip_me,
        "SKIPME defaults to yes"
    );
    assert_eq!(kill("CLIENT KILL TYPE master").id, Some(u64::MAX));
    assert_eq!(kill("CLIENT KILL USER default").id, None);
    assert_eq!(
        err("CLIENT KILL ID abc"),
        "ERR client-id should be greater than 0"
    );
    assert_eq!(
        err("CLIENT KILL ID 0"),
        "ERR client-id should be greater than 0"
    );
    assert_eq!(err("CLIENT KILL TYPE foo"), "ERR Unknown client type 'foo'");
    assert_eq!(err("CLIENT KILL USER bob"), "ERR No such user 'bob'");
    assert_eq!(err("CLIENT KILL SKIPME maybe"), SYNTAX);
    assert_eq!(err("CLIENT KILL foo bar"), SYNTAX);
    assert_eq!(err("CLIENT KILL ID 1 TYPE"), SYNTAX);
}

// ----- server

#[test]
fn command_config_and_info_parse() {
    assert_eq!(
        cmd("COMMAND"),
        Command::CommandInfo(CommandInfoCommand::All)
    );
    assert_eq!(
        cmd("command count"),
        Command::CommandInfo(CommandInfoCommand::Count)
    );
    assert_eq!(
        cmd("COMMAND LIST"),
        Command::CommandInfo(CommandInfoCommand::List)
    );
    assert_eq!(
        cmd("COMMAND HELP"),
        Command::CommandInfo(CommandInfoCommand::Help)
    );
    assert_eq!(
        cmd("COMMAND INFO"),
        Command::CommandInfo(CommandInfoCommand::Info(vec![]))
    );
    assert_eq!(
        cmd("COMMAND DOCS get set"),
        Command::CommandInfo(CommandInfoCommand::Docs(vec![b("get"), b("set")]))
    );
    assert_eq!(
        err("COMMAND foo"),
        "ERR unknown subcommand 'foo'. Try COMMAND HELP."
    );
    assert_eq!(
        err("COMMAND COUNT x"),
        "ERR wrong number of arguments for 'command|count' command"
    );
    assert_eq!(err("COMMAND LIST x"), SYNTAX);

    assert_eq!(
        cmd("CONFIG GET save appendonly"),
        Command::ConfigGet(vec![b("save"), b("appendonly")])
    );
    assert_eq!(
        cmd("config set a 1 b 2"),
        Command::ConfigSet(vec![(b("a"), b("1")), (b("b"), b("2"))])
    );
    assert_eq!(cmd("CONFIG RESETSTAT"), Command::ConfigResetStat);
    assert_eq!(
        err("CONFIG"),
        "ERR wrong number of arguments for 'config' command"
    );
    assert_eq!(
        err("CONFIG foo"),
        "ERR unknown subcommand 'foo'. Try CONFIG HELP."
    );
    assert_eq!(
        err("CONFIG REWRITE"),
        "ERR unknown subcommand 'REWRITE'. Try CONFIG HELP."
    );
    assert_eq!(
        err("CONFIG GET"),
        "ERR wrong number of arguments for 'config|get' command"
    );
    assert_eq!(
        err("CONFIG SET a"),
        "ERR wrong number of arguments for 'config|set' command"
    );
    assert_eq!(err("CONFIG SET a b c"), SYNTAX);
    assert_eq!(
        err("CONFIG RESETSTAT x"),
        "ERR wrong number of arguments for 'config|resetstat' command"
    );
    assert_eq!(cmd("INFO"), Command::Info(vec![]));
    assert_eq!(
        cmd("INFO server clients"),
        Command::Info(vec![b("server"), b("clients")])
    );
}

#[test]
fn flush_shutdown_time_dbsize_parse() {
    assert_eq!(cmd("FLUSHALL"), Command::Flush(FlushMode::Sync));
    assert_eq!(cmd("flushdb async"), Command::Flush(FlushMode::Async));
    assert_eq!(cmd("FLUSHALL SYNC"), Command::Flush(FlushMode::Sync));
    assert_eq!(err("FLUSHALL foo"), SYNTAX);
    assert_eq!(err("FLUSHALL async sync"), SYNTAX);
    assert_eq!(cmd("TIME"), Command::Time);
    assert_eq!(cmd("DBSIZE"), Command::DbSize);
    assert_eq!(cmd("SHUTDOWN"), Command::Shutdown { abort: false });
    assert_eq!(
        cmd("SHUTDOWN NOSAVE NOW FORCE"),
        Command::Shutdown { abort: false }
    );
    assert_eq!(cmd("SHUTDOWN abort"), Command::Shutdown { abort: true });
    assert_eq!(err("SHUTDOWN foo"), SYNTAX);
    assert_eq!(err("SHUTDOWN NOSAVE SAVE"), SYNTAX);
    assert_eq!(err("SHUTDOWN ABORT NOW"), SYNTAX);
}

#[test]
fn ring_repair_parses_its_three_forms() {
    assert_eq!(
        cmd("RING REPAIR"),
        Command::Ring(RingCommand::Repair(RepairTarget::All))
    );
    assert_eq!(
        cmd("ring repair all"),
        Command::Ring(RingCommand::Repair(RepairTarget::All))
    );
    assert_eq!(
        cmd("RING REPAIR STATUS"),
        Command::Ring(RingCommand::Repair(RepairTarget::Status))
    );
    assert_eq!(
        cmd("RING REPAIR user:1"),
        Command::Ring(RingCommand::Repair(RepairTarget::Key(b("user:1"))))
    );
    assert_eq!(err("RING REPAIR a b"), SYNTAX);
    assert_eq!(err("RING REPAIR a b c"), SYNTAX);
}

// ----- strings

#[test]
fn set_options_parse_in_any_order_and_case() {
    assert_eq!(cmd("SET k v"), Command::Set(set("k", "v")));
    let full = cmd("set k v nx get px 1500");
    assert_eq!(
        full,
        Command::Set(Set {
            condition: Some(SetCondition::IfAbsent),
            get: true,
            expiry: SetExpiry::At(ExpiryTime::RelativeMs(1500)),
            ..set("k", "v")
        })
    );
    let at = |line| match cmd(line) {
        Command::Set(s) => s.expiry,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        at("SET k v EX 10"),
        SetExpiry::At(ExpiryTime::RelativeMs(10_000))
    );
    assert_eq!(
        at("SET k v EXAT 10"),
        SetExpiry::At(ExpiryTime::AbsoluteMs(10_000))
    );
    assert_eq!(
        at("SET k v PXAT 10"),
        SetExpiry::At(ExpiryTime::AbsoluteMs(10))
    );
    assert_eq!(at("SET k v KEEPTTL"), SetExpiry::Keep);
    assert_eq!(at("SET k v KEEPTTL KEEPTTL"), SetExpiry::Keep);
    assert_eq!(
        at("SET k v EX abc EX 10"),
        SetExpiry::At(ExpiryTime::RelativeMs(10_000))
    );
    assert_eq!(
        at("SET k v EXAT 9223372036854775"),
        SetExpiry::At(ExpiryTime::AbsoluteMs(9_223_372_036_854_775_000))
    );
    assert!(matches!(
        cmd("SET k v XX XX"),
        Command::Set(Set {
            condition: Some(SetCondition::IfPresent),
            ..
        })
    ));
    assert!(matches!(
        cmd("SET k v GET NX"),
        Command::Set(Set { get: true, .. })
    ));
}

#[test]
fn set_errors_match_redis() {
    let expire = "ERR invalid expire time in 'set' command";
    for line in [
        "SET k v EX 0",
        "SET k v EX -1",
        "SET k v PX 0",
        "SET k v PXAT 0",
        "SET k v EX 9223372036854775807",
        "SET k v EX 9223372036854775",
        "SET k v PX 9223372036854775807",
    ] {
        assert_eq!(err(line), expire, "{line}");
    }
    assert_eq!(err("SET k v EX abc"), NOT_INT);
    for line in [
        "SET k v EX 10 PX 10",
        "SET k v NX XX",
        "SET k v KEEPTTL EX 1",
        "SET k v EX 1 KEEPTTL",
        "SET k v EX",
        "SET k v foo",
        "SET k v PERSIST",
        "SET k v EXAT 1 EX 1",
    ] {
        assert_eq!(err(line), SYNTAX, "{line}");
    }
}

#[test]
fn setex_psetex_and_getset_are_spelled_as_set() {
    assert_eq!(
        cmd("SETEX k 5 v"),
        Command::Set(Set {
            expiry: SetExpiry::At(ExpiryTime::RelativeMs(5000)),
            ..set("k", "v")
        })
    );
    assert_eq!(
        cmd("PSETEX k 5 v"),
        Command::Set(Set {
            expiry: SetExpiry::At(ExpiryTime::RelativeMs(5)),
            ..set("k", "v")
        })
    );
    assert_eq!(
        cmd("GETSET k v"),
        Command::Set(Set {
            get: true,
            ..set("k", "v")
        })
    );
    assert_eq!(
        err("SETEX k 0 v"),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        err("SETEX k -1 v"),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        err("SETEX k 9223372036854775 v"),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        err("PSETEX k 0 v"),
        "ERR invalid expire time in 'psetex' command"
    );
    assert_eq!(err("SETEX k x v"), NOT_INT);
}

#[test]
fn getex_options_and_errors() {
    assert_eq!(
        cmd("GETEX k"),
        Command::GetEx {
            key: b("k"),
            expiry: None
        }
    );
    assert_eq!(
        cmd("GETEX k PERSIST PERSIST"),
        Command::GetEx {
            key: b("k"),
            expiry: Some(GetExExpiry::Persist)
        }
    );
    assert_eq!(
        cmd("GETEX k exat 7"),
        Command::GetEx {
            key: b("k"),
            expiry: Some(GetExExpiry::At(ExpiryTime::AbsoluteMs(7000)))
        }
    );
    assert_eq!(
        err("GETEX k EX 0"),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(
        err("GETEX k EX 9223372036854775"),
        "ERR invalid expire time in 'getex' command"
    );
    for line in [
        "GETEX k PERSIST EX 1",
        "GETEX k foo",
        "GETEX k EX 1 PX 1",
        "GETEX k NX",
        "GETEX k KEEPTTL",
    ] {
        assert_eq!(err(line), SYNTAX, "{line}");
    }
}

#[test]
fn other_string_commands_parse() {
    assert_eq!(
        cmd("SETNX k v"),
        Command::SetNx {
            key: b("k"),
            value: b("v")
        }
    );
    assert_eq!(cmd("GETDEL k"), Command::GetDel(b("k")));
    assert_eq!(cmd("MGET a b"), Command::MGet(vec![b("a"), b("b")]));
    assert_eq!(
        cmd("MSETNX a 1 b 2"),
        Command::MSetNx(vec![(b("a"), b("1")), (b("b"), b("2"))])
    );
    assert_eq!(cmd("STRLEN k"), Command::StrLen(b("k")));
    assert_eq!(
        cmd("APPEND k v"),
        Command::Append {
            key: b("k"),
            value: b("v")
        }
    );
    assert_eq!(
        cmd("GETRANGE k 0 -1"),
        Command::GetRange {
            key: b("k"),
            start: 0,
            end: -1
        }
    );
    assert_eq!(
        cmd("SUBSTR k 1 2"),
        Command::GetRange {
            key: b("k"),
            start: 1,
            end: 2
        }
    );
    assert_eq!(err("GETRANGE k a b"), NOT_INT);
    assert_eq!(err("GETRANGE k 0 9223372036854775808"), NOT_INT);
}

#[test]
fn setrange_checks_offset_and_size() {
    assert_eq!(
        cmd("SETRANGE k 5 v"),
        Command::SetRange {
            key: b("k"),
            offset: 5,
            value: b("v")
        }
    );
    assert_eq!(err("SETRANGE k -1 x"), "ERR offset is out of range");
    assert_eq!(err("SETRANGE k -1 \"\""), "ERR offset is out of range");
    assert_eq!(
        err("SETRANGE k 536870912 x"),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert!(parse("SETRANGE k 536870911 x").is_ok());
    assert!(
        parse("SETRANGE k 600000000 \"\"").is_ok(),
        "an empty value writes nothing"
    );
    assert_eq!(err("SETRANGE k abc x"), NOT_INT);
}

#[test]
fn counters_parse_with_redis_integer_rules() {
    assert_eq!(
        cmd("INCR k"),
        Command::IncrBy {
            key: b("k"),
            delta: 1
        }
    );
    assert_eq!(
        cmd("DECR k"),
        Command::IncrBy {
            key: b("k"),
            delta: -1
        }
    );
    assert_eq!(
        cmd("INCRBY k -5"),
        Command::IncrBy {
            key: b("k"),
            delta: -5
        }
    );
    assert_eq!(
        cmd("DECRBY k 5"),
        Command::IncrBy {
            key: b("k"),
            delta: -5
        }
    );
    assert_eq!(
        cmd("DECRBY k 9223372036854775807"),
        Command::IncrBy {
            key: b("k"),
            delta: -i64::MAX
        }
    );
    assert_eq!(
        err("DECRBY k -9223372036854775808"),
        "ERR decrement would overflow"
    );
    for bad in [
        "abc",
        "9223372036854775808",
        "+1",
        "01",
        "\" 1\"",
        "\"1 \"",
        "-0",
        "1.0",
        "\"\"",
    ] {
        assert_eq!(err(&format!("INCRBY k {bad}")), NOT_INT, "{bad}");
    }
    assert_eq!(
        cmd("INCRBYFLOAT k 1.5"),
        Command::IncrByFloat {
            key: b("k"),
            delta: b("1.5")
        }
    );
    assert_eq!(
        cmd("INCRBYFLOAT k +.5"),
        Command::IncrByFloat {
            key: b("k"),
            delta: b("+.5")
        }
    );
    assert_eq!(
        cmd("INCRBYFLOAT k 0x10"),
        Command::IncrByFloat {
            key: b("k"),
            delta: b("0x10")
        }
    );
    // Infinity is a float; the sum is checked when run.
    assert_eq!(
        cmd("INCRBYFLOAT k inf"),
        Command::IncrByFloat {
            key: b("k"),
            delta: b("inf")
        }
    );
    assert_eq!(
        cmd("INCRBYFLOAT k 1e400"),
        Command::IncrByFloat {
            key: b("k"),
            delta: b("1e400")
        }
    );
    for bad in ["abc", "nan", "\" 1\"", "\"1 \"", "1e5000", "\"\""] {
        assert_eq!(
            err(&format!("INCRBYFLOAT k {bad}")),
            "ERR value is not a valid float",
            "{bad}"
        );
    }
}

// ----- keyspace

#[test]
fn multi_key_and_single_key_commands_parse() {
    assert_eq!(cmd("DEL a b"), Command::Del(vec![b("a"), b("b")]));
    assert_eq!(cmd("UNLINK a"), Command::Unlink(vec![b("a")]));
    assert_eq!(cmd("EXISTS a a"), Command::Exists(vec![b("a"), b("a")]));
    assert_eq!(cmd("TOUCH a"), Command::Touch(vec![b("a")]));
    assert_eq!(cmd("TYPE a"), Command::Type(b("a")));
    assert_eq!(
        cmd("TTL a"),
        Command::Ttl {
            key: b("a"),
            unit: TimeUnit::Seconds
        }
    );
    assert_eq!(
        cmd("PTTL a"),
        Command::Ttl {
            key: b("a"),
            unit: TimeUnit::Millis
        }
    );
    assert_eq!(
        cmd("EXPIRETIME a"),
        Command::ExpireTime {
            key: b("a"),
            unit: TimeUnit::Seconds
        }
    );
    assert_eq!(
        cmd("PEXPIRETIME a"),
        Command::ExpireTime {
            key: b("a"),
            unit: TimeUnit::Millis
        }
    );
    assert_eq!(cmd("PERSIST a"), Command::Persist(b("a")));
    assert_eq!(cmd("KEYS user:*"), Command::Keys(b("user:*")));
    assert_eq!(cmd("RANDOMKEY"), Command::RandomKey);
}

#[test]
fn rename_and_copy_parse_with_redis_s_option_errors_in_order() {
    assert_eq!(
        cmd("RENAMENX a b"),
        Command::Rename {
            source: b("a"),
            destination: b("b"),
            nx: true
        }
    );
    assert_eq!(
        cmd("COPY a b db 0 REPLACE"),
        Command::Copy {
            source: b("a"),
            destination: b("b"),
            replace: true
        }
    );
    assert_eq!(err("COPY a b DB"), "ERR syntax error");
    assert_eq!(
        err("COPY a b DB x FOO"),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err("COPY a b FOO DB x"), "ERR syntax error");
    assert_eq!(err("COPY a b DB 1"), "ERR DB index is out of range");
    assert_eq!(
        err("COPY a b DB 2147483648"),
        "ERR value is out of range, value must between -2147483648 and 2147483647"
    );
    assert_eq!(
        err("COPY a a"),
        "ERR source and destination objects are the same"
    );
    assert_eq!(err("COPY a a DB 5"), "ERR DB index is out of range");
    assert_eq!(
        err("RENAME a"),
        "ERR wrong number of arguments for 'rename' command"
    );
}

#[test]
fn expire_family_parses_units_and_conditions() {
    let e = |line| match cmd(line) {
        Command::Expire(e) => (e.at, e.condition),
        other => panic!("{other:?}"),
    };
    assert_eq!(e("EXPIRE k 10"), (ExpiryTime::RelativeMs(10_000), None));
    assert_eq!(e("EXPIRE k -1"), (ExpiryTime::RelativeMs(-1000), None));
    assert_eq!(
        e("PEXPIRE k 10 nx"),
        (ExpiryTime::RelativeMs(10), Some(ExpireCondition::Nx))
    );
    assert_eq!(
        e("EXPIREAT k 10 XX"),
        (ExpiryTime::AbsoluteMs(10_000), Some(ExpireCondition::Xx))
    );
    assert_eq!(
        e("PEXPIREAT k 10 gt"),
        (ExpiryTime::AbsoluteMs(10), Some(ExpireCondition::Gt))
    );
    assert_eq!(
        e("EXPIRE k 10 LT"),
        (ExpiryTime::RelativeMs(10_000), Some(ExpireCondition::Lt))
    );
    assert_eq!(
        e("EXPIRE k 10 XX GT"),
        (ExpiryTime::RelativeMs(10_000), Some(ExpireCondition::Gt))
    );
    assert_eq!(
        e("EXPIRE k 10 XX LT"),
        (ExpiryTime::RelativeMs(10_000), Some(ExpireCondition::XxLt))
    );
    assert_eq!(
        e("EXPIRE k 10 NX NX"),
        (ExpiryTime::RelativeMs(10_000), Some(ExpireCondition::Nx))
    );
    assert_eq!(
        e("PEXPIREAT k 9223372036854775807"),
        (ExpiryTime::AbsoluteMs(i64::MAX), None)
    );
    assert_eq!(
        e("EXPIREAT k 9223372036854775"),
        (ExpiryTime::AbsoluteMs(9_223_372_036_854_775_000), None)
    );
}

#[test]
fn expire_errors_match_redis() {
    let nx = "ERR NX and XX, GT or LT options at the same time are not compatible";
    assert_eq!(err("EXPIRE k 10 NX XX"), nx);
    assert_eq!(err("EXPIRE k 10 NX GT"), nx);
    assert_eq!(err("EXPIRE k 10 LT NX"), nx);
    assert_eq!(
        err("EXPIRE k 10 GT LT"),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(err("EXPIRE k 10 foo"), "ERR Unsupported option foo");
    assert_eq!(
        err("EXPIRE k abc foo"),
        "ERR Unsupported option foo",
        "options are read first"
    );
    assert_eq!(err("EXPIRE k abc NX"), NOT_INT);
    assert_eq!(
        err("EXPIRE k 9223372036854776"),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err("EXPIRE k -9223372036854776"),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err("EXPIRE k 9223372036854775"),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err("PEXPIRE k 9223372036854775807"),
        "ERR invalid expire time in 'pexpire' command"
    );
    assert_eq!(
        err("EXPIREAT k 9223372036854776"),
        "ERR invalid expire time in 'expireat' command"
    );
}

#[test]
fn scan_parses_cursor_and_options_like_redis() {
    let s = |line| match cmd(line) {
        Command::Scan(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        s("SCAN 0"),
        Scan {
            cursor: 0,
            pattern: None,
            count: 10,
            type_filter: None
        }
    );
    assert_eq!(
        s("scan 17 match u:* count 100 TYPE STRING"),
        Scan {
            cursor: 17,
            pattern: Some(b("u:*")),
            count: 100,
            type_filter: Some(b("string"))
        }
    );
    assert_eq!(s("SCAN 0 COUNT 5 COUNT 7").count, 7);
    assert_eq!(s("SCAN 007").cursor, 7);
    assert_eq!(s("SCAN +5").cursor, 5);
    assert_eq!(s("SCAN -1").cursor, u64::MAX);
    assert_eq!(s("SCAN \"\"").cursor, 0);
    assert_eq!(s("SCAN 18446744073709551615").cursor, u64::MAX);
    for bad in ["abc", "18446744073709551616", "\" 5\"", "5a", "-", "+"] {
        assert_eq!(err(&format!("SCAN {bad}")), "ERR invalid cursor", "{bad}");
    }
    assert_eq!(
        err("SCAN abc COUNT 0"),
        "ERR invalid cursor",
        "the cursor is read first"
    );
    for line in [
        "SCAN 0 MATCH",
        "SCAN 0 COUNT 0",
        "SCAN 0 COUNT -1",
        "SCAN 0 COUNT 1 foo",
        "SCAN 0 foo bar",
    ] {
        assert_eq!(err(line), SYNTAX, "{line}");
    }
    assert_eq!(err("SCAN 0 COUNT abc"), NOT_INT);
}

#[test]
fn error_variants_used_by_the_executor_have_redis_texts() {
    assert_eq!(
        CommandError::IncrOverflow.to_string(),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        CommandError::DbIndexOutOfRange.to_string(),
        "ERR DB index is out of range"
    );
    assert_eq!(
        CommandError::ConfigSetFailed {
            arg: "maxmemory".into(),
            reason: "duplicate parameter".into()
        }
        .to_string(),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"
    );
    assert_eq!(
        CommandError::UnknownConfig("foo".into()).to_string(),
        "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
    );
    assert_eq!(
        CommandError::NoShutdownInProgress.to_string(),
        "ERR No shutdown in progress."
    );
}

#[test]
fn an_empty_request_is_an_unknown_command() {
    assert_eq!(
        Request::parse(vec![]).unwrap_err().to_string(),
        "ERR unknown command '', with args beginning with: "
    );
}

#[test]
fn keys_are_listed_in_order_for_every_shape_of_command() {
    let keys = |line: &str| -> Vec<Bytes> {
        let args = split_inline(line.as_bytes()).expect("test line splits");
        let entry = lookup(&args[0]).expect("a known command");
        let mut keys = Vec::new();
        Request::parse_with_keys(entry, args, &mut keys).unwrap_or_else(|e| panic!("{e}"));
        keys
    };
    assert_eq!(keys("GET a"), [b("a")]);
    assert_eq!(keys("SET a 1 EX 10"), [b("a")]);
    assert_eq!(keys("DEL a b a"), [b("a"), b("b"), b("a")]);
    assert_eq!(keys("MSET a 1 b 2"), [b("a"), b("b")]);
    assert!(keys("PING").is_empty());
    assert!(keys("SCAN 0").is_empty());
    assert_eq!(keys("MGET x y z").len(), 3);
    assert_eq!(keys("GET a CONSISTENCY ONE"), [b("a")]);
    assert_eq!(keys("MSET a 1 b 2 CONSISTENCY ALL"), [b("a"), b("b")]);
    // Movable keys: the ones after numkeys, and only as many as it says.
    assert_eq!(
        keys("ZUNIONSTORE d 2 a b WEIGHTS 1 2"),
        [b("d"), b("a"), b("b")]
    );
    assert_eq!(keys("ZINTER 1 a WITHSCORES"), [b("a")]);
    assert_eq!(keys("ZRANGESTORE d s 0 -1"), [b("d"), b("s")]);
    // A count past the arguments names no key (the parser refuses the request).
    assert!(
        KeyRange::NONE
            .numkeys(1)
            .keys(&[b("zunion"), b("5"), b("a")])
            .next()
            .is_none()
    );
    assert!(
        KeyRange::NONE
            .numkeys(1)
            .keys(&[b("zunion"), b("x"), b("a")])
            .next()
            .is_none()
    );
}

#[test]
fn every_command_with_subcommands_is_known_as_a_container() {
    // A command whose parse refuses an unknown subcommand must be checked as one by
    // `Request::lookup_error`, which parses containers only.
    for spec in TABLE {
        if spec.arity == 1 {
            continue; // No argument at all, so no subcommand.
        }
        let mut args = vec![
            Bytes::from(spec.name),
            Bytes::from_static(b"no-such-subcommand"),
        ];
        while !spec.arity_allows(args.len()) {
            args.push(Bytes::from_static(b"x"));
        }
        let entry = lookup(spec.name.as_bytes()).expect("in the table");
        let refused = matches!(
            Request::parse_as(entry, args),
            Err(CommandError::UnknownSubcommand { .. })
        );
        assert_eq!(refused, spec.is_container(), "{}", spec.name);
    }
}
