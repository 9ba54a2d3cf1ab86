//! Differential test: the same command lines, in the same order, to a fresh redis-server and
//! a fresh ringcache, over raw RESP2 and again over RESP3 (after `HELLO 3`); replies compared
//! line by line. Every mismatch is printed (command, redis reply, ringcache reply) before the
//! test fails, so one run shows them all.
//!
//! Script syntax (see `common::Script`): one command per line in redis-cli quoting; `#`
//! comments; a leading `@sorted`, `@shape`, `@approx=N`, `@hello`, `@scan` or `@known=why`
//! chooses the comparison; `@sleep MS` pauses both sides. `$PROTO` is replaced by the run's
//! protocol version. Each group uses its own key prefix, so groups do not depend on each other
//! except the final flush group.

mod common;

use common::{Script, run_side_by_side};

/// The corpus. Absolute expiry times use 4102444800 (2100-01-01) so that `EXPIRETIME` and
/// `PEXPIRETIME` compare exactly; relative ones compare with `@approx`.
const CORPUS: &str = r#"
# ---------------------------------------------------------------- connection
PING
PING hello
PING "hello world"
PING a b
ping
PiNg
ECHO hi
ECHO ""
ECHO "\x00\xff\r\n"
ECHO
ECHO a b
SELECT 0
@known=only_database_0_exists SELECT 1
SELECT 0
SELECT 16
SELECT -1
SELECT abc
SELECT
SELECT 0 1
@hello HELLO
@hello HELLO 2
@hello HELLO $PROTO
HELLO 4
HELLO 1
HELLO abc
HELLO $PROTO FOO
HELLO $PROTO AUTH default
HELLO $PROTO SETNAME
HELLO $PROTO SETNAME "bad name"
HELLO $PROTO SETNAME a b
@hello HELLO $PROTO SETNAME hello-name
CLIENT GETNAME
@hello HELLO $PROTO SETNAME ""
CLIENT GETNAME

# ---------------------------------------------------------------- client
CLIENT SETNAME myconn
CLIENT GETNAME
CLIENT SETNAME "bad name"
CLIENT SETNAME "bad\nname"
CLIENT SETNAME "caf\xc3\xa9"
CLIENT SETNAME "a\x7fb"
CLIENT SETNAME "dash-and_underscore:1"
CLIENT GETNAME
CLIENT SETNAME ""
CLIENT GETNAME
CLIENT SETNAME a b
CLIENT SETNAME
CLIENT GETNAME x
@shape CLIENT ID
CLIENT ID x
CLIENT FOO
CLIENT FOO bar
CLIENT
client getname

# ---------------------------------------------------------------- server
@shape INFO
@shape INFO server
@shape INFO keyspace
@shape COMMAND
@shape COMMAND COUNT
@shape COMMAND INFO get
@shape TIME
TIME x
COMMAND FOO
CONFIG FOO
CONFIG
CONFIG GET maxmemory
CONFIG GET proto-max-bulk-len
CONFIG GET timeout
CONFIG GET maxclients
CONFIG GET save
CONFIG GET appendonly
CONFIG GET MAXMEMORY
@pairs CONFIG GET maxmemory timeout
@pairs CONFIG GET maxmemory hash-max-listpack-entries
@pairs CONFIG GET *max*
@pairs CONFIG GET *max* maxmemory
@pairs CONFIG GET notify-keyspace-events lua-time-limit busy-reply-threshold
@pairs CONFIG GET tls-* slave-*
@pairs CONFIG GET client-output-buffer-limit latency-tracking-info-percentiles
@pairs CONFIG GET SLAVE-READ-ONLY Appendonly
@pairs CONFIG GET cluster-enabled databases-x
CONFIG SET notify-keyspace-events ""
@known=parameters_that_do_not_apply_are_read_only CONFIG SET notify-keyspace-events KEA
@known=parameters_that_do_not_apply_are_read_only CONFIG GET notify-keyspace-events
CONFIG SET notify-keyspace-events ""
CONFIG GET notify-keyspace-events
CONFIG GET nonexistent-parameter
CONFIG GET
CONFIG SET timeout 0
CONFIG GET timeout
CONFIG SET timeout abc
CONFIG SET maxclients 0
CONFIG SET maxclients -1
CONFIG SET timeout -1
CONFIG SET client-query-buffer-limit 10
CONFIG GET maxclients
CONFIG SET nonexistent-parameter 1
CONFIG SET timeout
CONFIG SET

# ---------------------------------------------------------------- unknown commands
FOO
FOO bar baz
foo "a b" c
NOSUCHCOMMAND 1 2 3 4 5 6 7 8 9 10
NOSUCHCOMMAND aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b
"bad\r\ncmd" x
""

# ---------------------------------------------------------------- SET and its options
SET set:a 1
GET set:a
SET set:a 2 NX
SET set:a 3 XX
GET set:a
SET set:b 1 XX
GET set:b
SET set:b 1 NX
GET set:b
set set:lower v nx
get set:lower
SET set:c v EX 100
@approx=1 TTL set:c
SET set:c v PX 100000
@approx=1000 PTTL set:c
SET set:c v ex 100
@approx=1 TTL set:c
SET set:c v EXAT 4102444800
EXPIRETIME set:c
PEXPIRETIME set:c
SET set:c v PXAT 4102444800123
PEXPIRETIME set:c
EXPIRETIME set:c
SET set:c w KEEPTTL
PEXPIRETIME set:c
GET set:c
SET set:c v
TTL set:c
SET set:d v GET
SET set:d w GET
SET set:d x NX GET
GET set:d
SET set:d y XX GET
SET set:d2 y XX GET
GET set:d2
SET set:d3 z GET EX 100
@approx=1 TTL set:d3
SET set:combo v NX PX 100000 GET
@approx=1000 PTTL set:combo
SET set:combo w xx get keepttl
@approx=1000 PTTL set:combo
SET set:e v EXAT 1
GET set:e
EXISTS set:e
SET set:e v PXAT 1
GET set:e
SET set:a v EX 0
SET set:a v EX -1
SET set:a v PX 0
SET set:a v PX -5
SET set:a v EXAT 0
SET set:a v PXAT -5
SET set:a v EX abc
SET set:a v EX 1.5
SET set:a v EX ""
SET set:a v EX 9223372036854775807
SET set:a v PX 9223372036854775807
SET set:a v EX 9223372036854775
SET set:a v EXAT 9223372036854775807
SET set:a v NX XX
SET set:a v XX NX
SET set:a v EX 10 PX 100
SET set:a v EX 10 EXAT 100
SET set:a v EX 10 KEEPTTL
SET set:a v KEEPTTL EX 10
SET set:a v KEEPTTL PXAT 10
SET set:a v EX 10 EX 10
SET set:a v NX NX
SET set:a v GET GET
SET set:a v EX
SET set:a v PX
SET set:a v FOO
SET set:a v EX 10 FOO
SET set:a v CONSISTENCY
GET set:a
SET set:a
SET
GET set:a b
GET
GeT
SET "" empty-key
GET ""
SET set:empty ""
GET set:empty
STRLEN set:empty
SET set:bin "\x00\xff\r\n\x01"
GET set:bin
STRLEN set:bin
GET set:missing

# ---------------------------------------------------------------- SETNX SETEX PSETEX GETSET GETDEL GETEX
SETNX sx:a 1
SETNX sx:a 2
GET sx:a
SETNX sx:a
SETNX sx:a v x
SETEX sx:b 100 v
@approx=1 TTL sx:b
GET sx:b
SETEX sx:b 0 v
SETEX sx:b -10 v
SETEX sx:b abc v
SETEX sx:b 9223372036854775807 v
SETEX sx:b 10
SETEX sx:b 10 v x
PSETEX sx:c 100000 v
@approx=1000 PTTL sx:c
PSETEX sx:c 0 v
PSETEX sx:c -1 v
PSETEX sx:c abc v
PSETEX sx:c 10
GETSET sx:d 1
GETSET sx:d 2
GET sx:d
SET sx:d3 v EX 100
GETSET sx:d3 w
TTL sx:d3
GETSET sx:d
GETSET sx:d v x
GETDEL sx:d
GETDEL sx:d
EXISTS sx:d
GETDEL
GETDEL a b
SET sx:e v EX 100
GETEX sx:e
@approx=1 TTL sx:e
GETEX sx:e PERSIST
TTL sx:e
GETEX sx:e EX 200
@approx=1 TTL sx:e
GETEX sx:e PX 300000
@approx=1000 PTTL sx:e
GETEX sx:e EXAT 4102444800
EXPIRETIME sx:e
GETEX sx:e PXAT 4102444800500
PEXPIRETIME sx:e
GETEX sx:e ex 100
@approx=1 TTL sx:e
GETEX sx:e EX 0
GETEX sx:e EX -1
GETEX sx:e PX 0
GETEX sx:e EXAT 0
GETEX sx:e EX abc
GETEX sx:e EX 9223372036854775807
GETEX sx:e EX 10 PX 10
GETEX sx:e PERSIST EX 10
GETEX sx:e EX 10 PERSIST
GETEX sx:e KEEPTTL
GETEX sx:e FOO
GETEX sx:e EX
GETEX sx:missing EX 10
GETEX sx:missing
GETEX sx:missing FOO
GETEX
SET sx:f v EX 100
GETEX sx:f PXAT 1
EXISTS sx:f

# ---------------------------------------------------------------- MGET MSET MSETNX
MSET m:a 1 m:b 2 m:c 3
MGET m:a m:b m:c m:missing
MGET m:a
MGET m:missing
MGET m:a m:a
MGET
MSET m:a
MSET m:a 1 m:b
MSET
mset m:lower 1
MSETNX m:a 9 m:new 9
GET m:a
GET m:new
MSETNX m:new 1 m:new2 2
MGET m:new m:new2
MSETNX m:new3 1 m:new3 2
GET m:new3
MSETNX m:x
MSETNX m:x 1 m:y
MSETNX
MSET m:dup 1 m:dup 2
GET m:dup
SET m:ttl v EX 100
MSET m:ttl w
TTL m:ttl

# ---------------------------------------------------------------- STRLEN APPEND GETRANGE SUBSTR SETRANGE
SET s:a "Hello World"
STRLEN s:a
STRLEN s:missing
STRLEN
STRLEN a b
APPEND s:a "!!"
GET s:a
APPEND s:new abc
APPEND s:new ""
GET s:new
APPEND s:empty ""
EXISTS s:empty
APPEND s:a
APPEND s:a b c
SET s:ttl v EX 100
APPEND s:ttl w
@approx=1 TTL s:ttl
GETRANGE s:a 0 4
GETRANGE s:a -5 -1
GETRANGE s:a 0 -1
GETRANGE s:a 5 2
GETRANGE s:a 100 200
GETRANGE s:a -100 -50
GETRANGE s:a -100 3
GETRANGE s:a 0 100
GETRANGE s:a -1 -1
GETRANGE s:a 3 3
GETRANGE s:a -1 0
GETRANGE s:missing 0 -1
GETRANGE s:missing 0 0
GETRANGE s:a a b
GETRANGE s:a 0 b
GETRANGE s:a 0 9223372036854775807
GETRANGE s:a -9223372036854775808 9223372036854775807
GETRANGE s:a 0
GETRANGE s:a 0 1 2
SET s:empty2 ""
GETRANGE s:empty2 0 -1
SUBSTR s:a 0 4
SUBSTR s:a -3 -1
SUBSTR s:a 0
SETRANGE s:a 6 Redis
GET s:a
SETRANGE s:b 5 hi
GET s:b
STRLEN s:b
SETRANGE s:c 0 ""
EXISTS s:c
SETRANGE s:c 5 ""
EXISTS s:c
SETRANGE s:a 0 ""
SETRANGE s:a -1 x
SETRANGE s:a 536870912 x
SETRANGE s:a 536870911 x
SETRANGE s:nokey 536870912 x
SETRANGE s:a 536870911 ""
SETRANGE s:a abc x
SETRANGE s:a 0
SETRANGE s:a 0 x y
SET s:ttl2 abc EX 100
SETRANGE s:ttl2 1 Z
GET s:ttl2
@approx=1 TTL s:ttl2

# ---------------------------------------------------------------- INCR DECR INCRBY DECRBY
SET c:a 10
INCR c:a
DECR c:a
INCRBY c:a 5
DECRBY c:a 3
INCRBY c:a -100
DECRBY c:a -100
GET c:a
INCR c:new
DECR c:new2
INCRBY c:new3 7
DECRBY c:new4 7
INCRBY c:new5 abc
EXISTS c:new5
INCRBY c:a 1.5
INCRBY c:a ""
INCRBY c:a 9223372036854775808
INCRBY c:a
INCRBY c:a 1 2
DECRBY c:a
INCR
INCR a b
DECR
DECR a b
DECRBY c:a -9223372036854775808
SET c:max 9223372036854775807
INCR c:max
INCRBY c:max 1
DECRBY c:max -1
GET c:max
DECR c:max
SET c:min -9223372036854775808
DECR c:min
DECRBY c:min 1
INCRBY c:min -1
INCR c:min
GET c:min
SET c:str hello
INCR c:str
DECR c:str
INCRBY c:str 1
SET c:sp " 1"
INCR c:sp
SET c:sp2 "1 "
INCR c:sp2
SET c:lead 01
INCR c:lead
SET c:plus +1
INCR c:plus
SET c:neg0 -0
INCR c:neg0
SET c:zero 0
INCR c:zero
SET c:big 9223372036854775808
INCR c:big
SET c:float 1.0
INCR c:float
SET c:sci 1e3
INCR c:sci
SET c:ttl 5 EX 100
INCR c:ttl
@approx=1 TTL c:ttl

# ---------------------------------------------------------------- INCRBYFLOAT
SET f:a 10.5
INCR f:a
INCRBYFLOAT f:a 0.1
INCRBYFLOAT f:a -5
INCRBYFLOAT f:a 5.0e3
INCRBYFLOAT f:a 5.0E3
INCRBYFLOAT f:a 1e-10
GET f:a
INCRBYFLOAT f:new 3.0
INCRBYFLOAT f:new 1.5e2
INCRBYFLOAT f:new -153
GET f:new
INCRBYFLOAT f:int 5
GET f:int
SET f:intval 7
INCRBYFLOAT f:intval 1
INCRBYFLOAT f:z 0.1
INCRBYFLOAT f:z 0.2
INCRBYFLOAT f:z -0.3
INCRBYFLOAT f:third 1
INCRBYFLOAT f:third -0.6666666666666666
INCRBYFLOAT f:neg -1.5
INCRBYFLOAT f:small 0.0000001
INCRBYFLOAT f:large 12345678901234567890
INCRBYFLOAT f:prec 1.1
INCRBYFLOAT f:prec 2.2
SET f:x 3.0
INCRBYFLOAT f:x 0
SET f:nz -0.0
INCRBYFLOAT f:nz 0
INCRBYFLOAT f:x 10.5
INCRBYFLOAT f:x 0.1
INCRBYFLOAT f:exp 5.0e3
INCRBYFLOAT f:exp 1.5E-3
INCRBYFLOAT f:exp -5001.5
INCRBYFLOAT f:exp .5
INCRBYFLOAT f:exp 5.
INCRBYFLOAT f:exp +1
INCRBYFLOAT f:new abc
INCRBYFLOAT f:new ""
INCRBYFLOAT f:new " 1"
INCRBYFLOAT f:new "1 "
INCRBYFLOAT f:new inf
INCRBYFLOAT f:new -inf
INCRBYFLOAT f:new nan
INCRBYFLOAT f:new 1e400
INCRBYFLOAT f:new 1.5.5
GET f:new
SET f:str hello
INCRBYFLOAT f:str 1
SET f:bad 1.5x
INCRBYFLOAT f:bad 1
SET f:sci 1e3
INCRBYFLOAT f:sci 1
SET f:max 1.7976931348623157e308
INCRBYFLOAT f:max 1.7976931348623157e308
INCRBYFLOAT f:max2 1e308
INCRBYFLOAT f:max2 1e308
SET f:ttl 1.5 EX 100
INCRBYFLOAT f:ttl 1
@approx=1 TTL f:ttl
INCRBYFLOAT f:new
INCRBYFLOAT f:new 1 2
INCRBYFLOAT

# ---------------------------------------------------------------- DEL UNLINK EXISTS TYPE TOUCH
SET k:a 1
SET k:b 2
SET k:c 3
DEL k:a k:missing
DEL k:a
DEL k:b k:b
DEL
UNLINK k:c k:missing
UNLINK k:c
UNLINK
EXISTS k:a
MSET k:x 1 k:y 2
EXISTS k:x k:y k:x k:missing
EXISTS k:missing
EXISTS
TYPE k:x
TYPE k:missing
TYPE
TYPE a b
TOUCH k:x k:y k:missing
TOUCH k:missing
TOUCH
del k:x
exists k:x

# ---------------------------------------------------------------- EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PERSIST
SET e:a v
EXPIRE e:a 100
@approx=1 TTL e:a
EXPIRE e:a 50 NX
EXPIRE e:a 50 XX
EXPIRE e:a 200 GT
EXPIRE e:a 100 GT
EXPIRE e:a 10 LT
EXPIRE e:a 100 LT
EXPIRE e:a 100 nx
EXPIRE e:a 1000 gt
EXPIRE e:a 10 lt
@approx=1 TTL e:a
EXPIRE e:a 10 NX XX
EXPIRE e:a 10 XX NX
EXPIRE e:a 10 GT LT
EXPIRE e:a 10 NX GT
EXPIRE e:a 10 NX LT
EXPIRE e:a 5 XX GT
EXPIRE e:a 500 XX GT
EXPIRE e:a 10 FOO
EXPIRE e:a 10 NX NX
EXPIRE e:a abc
EXPIRE e:a 1.5
EXPIRE e:a ""
EXPIRE e:a
EXPIRE e:missing 10
EXPIRE e:missing 10 NX
EXPIRE e:missing 10 FOO
PERSIST e:a
TTL e:a
PTTL e:a
PERSIST e:a
PERSIST e:missing
PERSIST
PERSIST a b
EXPIRE e:a 100 XX
EXPIRE e:a 100 GT
EXPIRE e:a 100 LT
@approx=1 TTL e:a
TTL e:missing
PTTL e:missing
EXPIRETIME e:missing
PEXPIRETIME e:missing
SET e:b v
EXPIRETIME e:b
PEXPIRETIME e:b
TTL e:b
PEXPIRE e:b 100000
@approx=1000 PTTL e:b
@approx=1 TTL e:b
PEXPIRE e:b 100 NX
PEXPIRE e:b 200000 GT
@approx=1000 PTTL e:b
PEXPIRE e:b abc
PEXPIRE e:b 10 GT LT
PEXPIRE e:b
EXPIREAT e:b 4102444800
EXPIRETIME e:b
PEXPIRETIME e:b
PEXPIREAT e:b 4102444800123
PEXPIRETIME e:b
EXPIRETIME e:b
PEXPIREAT e:b 4102444800999
EXPIRETIME e:b
EXPIREAT e:b 4102444800 GT
EXPIREAT e:b 4102444801 GT
EXPIRETIME e:b
PEXPIREAT e:b 4102444800000 LT
PEXPIRETIME e:b
EXPIREAT e:b 4102444800 NX
EXPIREAT e:b 4102444900 XX
EXPIRETIME e:b
EXPIREAT e:b 4102444800 NX XX
PEXPIREAT e:b 4102444800000 GT LT
EXPIREAT e:b abc
EXPIREAT e:b
PEXPIREAT e:b
EXPIREAT e:missing 4102444800
EXPIRE e:b 0
EXISTS e:b
SET e:c v
EXPIREAT e:c 1
GET e:c
SET e:c2 v
PEXPIREAT e:c2 1
EXISTS e:c2
SET e:d v
PEXPIRE e:d -1
EXISTS e:d
SET e:d2 v
EXPIRE e:d2 -100 GT
EXISTS e:d2
EXPIRE e:d2 -100 LT
EXISTS e:d2
SET e:e v
EXPIRE e:e 9223372036854775807
PEXPIRE e:e 9223372036854775807
EXPIREAT e:e 9223372036854775807
PEXPIREAT e:e 9223372036854775807
EXPIRE e:e -9223372036854775808
EXPIRE e:e 9223372036854775
TTL e:e
SET e:f v PX 50
SET e:f2 v EX 100
PEXPIRE e:f2 50
@sleep 150
GET e:f
EXISTS e:f
TTL e:f
PTTL e:f
EXPIRETIME e:f
PERSIST e:f
EXPIRE e:f 100
GET e:f2
SET e:g v EX 100
SET e:g w
TTL e:g
SET e:h v EX 100
GETSET e:h v2
TTL e:h
SET e:i v EX 100
GETDEL e:i
TTL e:i
SET e:j v
GETEX e:j PERSIST
TTL e:j
TTL
TTL a b
PTTL
EXPIRETIME
EXPIRETIME a b
PEXPIRETIME
EXPIRE
PEXPIRE
EXPIREAT
PEXPIREAT

# ---------------------------------------------------------------- KEYS
MSET kp:one 1 kp:two 2 kp:three 3 kp:four 4 kp:h?llo 5 kp:a*b 6 kp:hallo 7 kp:hello 8 kp:hxllo 9 kp:hllo 10 kp:heeeello 11 kp:[x] 12 kp:a\b 13 KP:upper 14
@sorted KEYS kp:*
@sorted KEYS kp:t*
@sorted KEYS kp:h?llo
@sorted KEYS kp:h*llo
@sorted KEYS kp:h[ae]llo
@sorted KEYS kp:h[^e]llo
@sorted KEYS kp:h[!e]llo
@sorted KEYS kp:h[a-]llo
@sorted KEYS kp:h[]llo
@sorted KEYS kp:h[a-e]llo
@sorted KEYS kp:h[e-a]llo
@sorted KEYS kp:h\?llo
@sorted KEYS kp:a\*b
@sorted KEYS kp:\[x\]
@sorted KEYS kp:a\\b
@sorted KEYS kp:[
@sorted KEYS kp:[x
@sorted KEYS kp:h[
@sorted KEYS kp:\
@sorted KEYS nomatch*
@sorted KEYS KP:*
@sorted KEYS kp:????
@sorted KEYS *llo
@sorted KEYS kp:one
@sorted KEYS ""
@sorted KEYS kp:**o
KEYS
KEYS a b

# ---------------------------------------------------------------- SCAN
MSET sc:1 a sc:2 b sc:3 c sc:4 d sc:5 e sc:6 f sc:7 g sc:8 h sc:9 i sc:10 j sc:11 k sc:12 l sc:13 m sc:14 n sc:15 o sc:16 p sc:17 q sc:18 r sc:19 s sc:20 t sc:21 u sc:22 v sc:23 w sc:24 x sc:25 y
@scan SCAN 0 MATCH sc:*
@scan SCAN 0 MATCH sc:* COUNT 3
@scan SCAN 0 COUNT 1 MATCH sc:1*
@scan SCAN 0 MATCH sc:1* COUNT 1000
@scan SCAN 0 TYPE string MATCH sc:2*
@scan SCAN 0 MATCH sc:2? TYPE STRING
@scan SCAN 0 TYPE list MATCH sc:*
@scan SCAN 0 MATCH nomatch:*
@scan SCAN 0 match sc:? count 2
SCAN 0 COUNT 0
SCAN 0 COUNT -1
SCAN 0 COUNT abc
SCAN 0 MATCH
SCAN 0 COUNT
SCAN 0 TYPE
SCAN 0 FOO bar
SCAN 0 MATCH a b
SCAN abc
@shape SCAN -1
SCAN 18446744073709551616
@shape SCAN ""
SCAN

# ---------------------------------------------------------------- wrong arity, every command
GET
GET a b
SET k
SETNX k
SETEX k 10
PSETEX k 10
GETSET k
GETDEL
GETEX
MGET
MSET
MSET k
MSETNX
STRLEN
APPEND k
GETRANGE k 0
SUBSTR k 0
SETRANGE k 0
INCR
DECR
INCRBY k
DECRBY k
INCRBYFLOAT k
DEL
UNLINK
EXISTS
TYPE
TOUCH
EXPIRE k
PEXPIRE k
EXPIREAT k
PEXPIREAT k
TTL
PTTL
EXPIRETIME
PEXPIRETIME
PERSIST
PFADD
PFCOUNT
PFMERGE
KEYS
SCAN
RANDOMKEY x
DBSIZE x
ECHO
SELECT
CLIENT
CONFIG
CONFIG GET
CONFIG SET timeout
HELLO 3 AUTH
COMMAND COUNT x
FLUSHALL SYNC x
FLUSHDB ASYNC x
AUTH
AUTH a b c

# ---------------------------------------------------------------- AUTH without requirepass
AUTH secret
AUTH default secret
AUTH someone secret

# ---------------------------------------------------------------- whole keyspace, then flush
@sorted KEYS *
@scan SCAN 0
@scan SCAN 0 COUNT 7 TYPE string
DBSIZE
FLUSHALL
DBSIZE
RANDOMKEY
KEYS *
@scan SCAN 0
SET rk:only v
RANDOMKEY
DBSIZE
DEL rk:only
SET rk:exp v PX 20
@sleep 60
RANDOMKEY
DBSIZE
FLUSHDB
DBSIZE
GET rk:only
SET rk:a 1
FLUSHALL ASYNC
DBSIZE
SET rk:a 1
FLUSHALL SYNC
SET rk:a 1
FLUSHDB ASYNC
SET rk:a 1
FLUSHDB SYNC
DBSIZE
FLUSHALL FOO
FLUSHDB FOO
FLUSHALL a b
flushall
DBSIZE
PING
"#;

fn run_differential(proto: u8) {
    // Both persistent, as ringcache is by default: redis-server with its append-only file,
    // ringcache with its log engine, both fsyncing every second.
    let script = Script::parse(CORPUS);
    run_side_by_side("", &script, proto, &["--appendonly", "yes"]);
}

#[test]
fn every_corpus_command_gets_the_same_reply_as_redis_over_resp2() {
    run_differential(2);
}

#[test]
fn every_corpus_command_gets_the_same_reply_as_redis_over_resp3() {
    run_differential(3);
}

#[test]
fn the_corpus_has_a_few_hundred_commands() {
    let n = Script::parse(CORPUS).len();
    assert!(n >= 300, "only {n} commands in the corpus");
}
