//! The Lua engine behind `EVAL`: Lua 5.1 as Redis embeds it (through `mlua`, its Lua
//! vendored and built from source), with Redis's sandbox and conversions.
//!
//! - A script runs in a Lua state ([`Engine`]) taken from the node's pool and given back
//!   after: scripts running at once (on a cluster) never share one, there are never more
//!   states than scripts running at once, and Redis's globals are read-only, so nothing a
//!   script leaves can reach the next.
//! - The sandbox: the `base`, `table`, `string` and `math` libraries without the functions
//!   that reach files or load code (`dofile`, `loadfile`, `load`, `loadstring`, `print`,
//!   `getfenv`, `setfenv`, `newproxy`, `string.dump`) and without `rawset` and `coroutine`
//!   (a coroutine would run outside the time limit's hook); `redis`, `bit`, `cjson`,
//!   `cmsgpack` ([`cmsgpack`]) and `struct` ([`structlib`]) added; no `os`, `io`, `package` or `debug`; bodies are text, never bytecode. Globals
//!   and the libraries are read-only, their metatables out of reach: reading a global that
//!   does not exist or writing any is Redis's error, and a state that goes back to the pool
//!   keeps nothing of the script that ran. Each state's memory is bounded
//!   ([`SCRIPT_MEMORY_BYTES_MAX`]).
//! - `redis.call`/`redis.pcall` hand the command to the caller's `call` function
//!   ([`Engine::run`]), which runs it on the node or through the cluster coordinator; the
//!   conversions between replies and Lua values are Redis's rules, RESP2's unless the
//!   script asked for RESP3 (`redis.setresp(3)`, [`Resp`]).
//! - A script past `busy-reply-threshold` marks the node busy; `SCRIPT KILL` stops it at its
//!   next check ([`ScriptState`]), every [`HOOK_INSTRUCTIONS`] Lua instructions.

mod clib;
mod cmsgpack;
mod structlib;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use parking_lot::Mutex;
use ringcache_resp::Reply;
use ringcache_resp::float::format_double_g17;

/// Bytes of Lua memory one state may hold; past it a script fails with Lua's `not enough
/// memory`.
pub const SCRIPT_MEMORY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes of script bodies the node keeps for `EVALSHA`; past it the bodies cached by `EVAL`
/// go first, oldest first (those of `SCRIPT LOAD` stay until `SCRIPT FLUSH`).
pub const SCRIPT_CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Lua instructions between two checks of the time limit and of `SCRIPT KILL`.
const HOOK_INSTRUCTIONS: u32 = 10_000;
/// How long a script runs before the other tasks of its runtime worker move to another
/// thread ([`RunClock::check`]): short scripts never pay for the move.
const MOVE_OTHERS_AFTER: Duration = Duration::from_millis(20);
/// Lua's GC pause ([`Engine::new`]): collections start when the heap doubled twice over.
const GC_PAUSE_PERCENT: std::ffi::c_int = 400;
/// Compiled scripts one state keeps; past it they are compiled again.
const COMPILED_PER_ENGINE_MAX: usize = 256;

/// The hex SHA1 of a script body: its name for `EVALSHA`.
pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Idle Lua states the node keeps for the next scripts; more are dropped when given back.
const IDLE_ENGINES_MAX: usize = 8;

/// The node's script bodies by SHA1, and its idle Lua states.
#[derive(Default)]
pub struct ScriptCache {
    inner: Mutex<CacheInner>,
    idle: Mutex<Vec<Engine>>,
}

#[derive(Default)]
struct CacheInner {
    bodies: HashMap<String, Bytes>,
    /// SHA1s cached by `EVAL`, oldest first: the first to go past the bound.
    evicted_first: VecDeque<String>,
    bytes: usize,
}

impl ScriptCache {
    /// Keeps `body` (from `SCRIPT LOAD` when `loaded`, else from `EVAL`); returns its SHA1.
    pub fn add(&self, body: &Bytes, loaded: bool) -> String {
        let sha = sha1_hex(body);
        let mut inner = self.inner.lock();
        if inner.bodies.insert(sha.clone(), body.clone()).is_none() {
            inner.bytes += body.len();
            if !loaded {
                inner.evicted_first.push_back(sha.clone());
            }
        }
        while inner.bytes > SCRIPT_CACHE_BYTES_MAX {
            let Some(old) = inner.evicted_first.pop_front() else {
                break;
            };
            if let Some(gone) = inner.bodies.remove(&old) {
                inner.bytes -= gone.len();
            }
        }
        sha
    }

    /// The body whose SHA1 is `sha` (either case), if kept, with its SHA1 in lower case.
    pub fn get(&self, sha: &[u8]) -> Option<(String, Bytes)> {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        let body = self.inner.lock().bodies.get(&sha).cloned()?;
        Some((sha, body))
    }

    /// Forgets every body (`SCRIPT FLUSH`), and the idle states' compiled scripts.
    pub fn flush(&self) {
        *self.inner.lock() = CacheInner::default();
        self.idle.lock().clear();
    }

    /// An idle Lua state, if one is kept.
    pub fn take_engine(&self) -> Option<Engine> {
        self.idle.lock().pop()
    }

    /// Keeps `engine` for the next script, unless enough are kept.
    pub fn give_back(&self, engine: Engine) {
        let mut idle = self.idle.lock();
        if idle.len() < IDLE_ENGINES_MAX {
            idle.push(engine);
        }
    }
}

/// Whether a script runs on the node, for how long, and whether `SCRIPT KILL` asked it to
/// stop.
#[derive(Default)]
pub struct ScriptState {
    /// Scripts running now (several at once in a cluster, one on a single node).
    pub running: AtomicU64,
    /// A running script passed `busy-reply-threshold`: other commands answer `BUSY`.
    pub busy: AtomicBool,
    /// `SCRIPT KILL` asked the busy scripts to stop.
    pub kill: AtomicBool,
    /// A script that wrote cannot be killed (Redis: `UNKILLABLE`).
    pub wrote: AtomicBool,
}

/// What a script's `redis.call` asks of the node: run these arguments as a command and
/// answer its reply (an error reply for a refused or failed command).
pub type Call<'a> = dyn FnMut(Vec<Bytes>) -> Reply + 'a;

/// One connection's Lua state.
pub struct Engine {
    lua: Lua,
    /// `run(f, handler)`: calls `f` under `xpcall`.
    trampoline: Function,
    /// The error handler: notes the script's line where an error is raised ([`ErrorLine`]).
    handler: Function,
    /// The table whose `fn` field `redis.call` dispatches to while a script runs.
    current: Table,
    compiled: HashMap<String, Function>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("compiled", &self.compiled.len())
            .finish()
    }
}

/// Set up once per state, with the full libraries, before the sandbox closes: keeps what
/// it needs in locals, removes what scripts may not reach, and makes globals read-only.
const PRELUDE: &str = r#"
local xpcall, pcall, error, tostring, setmetatable, getmetatable, pairs, type, unpack, killed,
    plain_error = ...
local function run(f, handler)
    return xpcall(f, handler)
end
-- Once SCRIPT KILL stopped the script, no pcall in it may catch that.
-- A library's error or a failed redis.call reaches the script as the text Redis's C
-- code raises, not as the Rust error object.
local function rethrow_if_killed(ok, ...)
    if killed() then error({err = "ERR Script killed by user with SCRIPT KILL..."}) end
    if ok then return ok, ... end
    return ok, plain_error((...))
end
_G.pcall = function(...) return rethrow_if_killed(pcall(...)) end
_G.xpcall = function(...) return rethrow_if_killed(xpcall(...)) end
dofile, loadfile, load, loadstring, print = nil, nil, nil, nil, nil
getfenv, setfenv, newproxy, module, rawset, coroutine = nil, nil, nil, nil, nil, nil
string.dump = nil
-- The libraries are shared by every script this state runs: read-only, and their
-- metatables (and the strings' one) out of reach.
local function readonly(t)
    return setmetatable({}, {
        __index = t,
        __newindex = function() error("Attempt to modify a readonly table", 2) end,
        __metatable = false,
    })
end
for _, name in pairs({"string", "table", "math", "redis", "bit", "cjson", "cmsgpack", "struct"}) do
    _G[name] = readonly(_G[name])
end
getmetatable("").__metatable = false
setmetatable(_G, {
    __index = function(_, name)
        error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
    end,
    __newindex = function()
        error("Attempt to modify a readonly table", 2)
    end,
    __metatable = false,
})
return run
"#;

/// What a finished script left: its reply, or the error it raised (with the script line).
enum Outcome {
    Reply(Reply),
    Error { text: String, line: i64 },
}

impl Engine {
    /// A new sandboxed state.
    ///
    /// # Errors
    /// Lua could not be set up (out of memory).
    pub fn new() -> mlua::Result<Engine> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH;
        let lua = Lua::new_with(libs, LuaOptions::new())?;
        lua.set_memory_limit(SCRIPT_MEMORY_BYTES_MAX)?;
        // A script's garbage is small and short-lived: collect when the heap has grown to
        // GC_PAUSE_PERCENT of what the last collection left, not Lua's default 200%.
        lua.gc_set_pause(GC_PAUSE_PERCENT);
        let globals = lua.globals();
        globals.raw_set("redis", redis_library(&lua)?)?;
        globals.raw_set("bit", bit_library(&lua)?)?;
        globals.raw_set("cjson", cjson_library(&lua)?)?;
        globals.raw_set("cmsgpack", cmsgpack::library(&lua)?)?;
        globals.raw_set("struct", structlib::library(&lua)?)?;
        let current = lua.create_table()?;
        let redis: Table = globals.raw_get("redis")?;
        redis.raw_set("call", call_function(&lua, &current, true)?)?;
        redis.raw_set("pcall", call_function(&lua, &current, false)?)?;
        let killed = lua.create_function(|lua, ()| {
            Ok(lua
                .app_data_ref::<RunClock>()
                .is_some_and(|clock| clock.killed()))
        })?;
        let get = |name: &str| globals.raw_get::<Function>(name);
        let trampoline: Function = lua.load(PRELUDE).set_name("=prelude").call((
            get("xpcall")?,
            get("pcall")?,
            get("error")?,
            get("tostring")?,
            get("setmetatable")?,
            get("getmetatable")?,
            get("pairs")?,
            get("type")?,
            get("unpack")?,
            killed,
            lua.create_function(|lua, raised: Value| plain_error(lua, raised))?,
        ))?;
        // The handler runs where the error was raised: the innermost frame of the script
        // there is the line Redis reports.
        let handler = lua.create_function(|lua, raised: Value| {
            lua.set_app_data(ErrorLine(script_line(lua)));
            Ok(raised)
        })?;
        let triggers = HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS);
        lua.set_hook(triggers, |lua, _| match lua.app_data_ref::<RunClock>() {
            Some(clock) => clock.check(),
            None => Ok(VmState::Continue),
        });
        Ok(Engine {
            lua,
            trampoline,
            handler,
            current,
            compiled: HashMap::new(),
        })
    }

    /// Runs `body` (whose SHA1 is `sha`) with `KEYS` and `ARGV`, sending each `redis.call`
    /// to `call`; the reply for the client, or the error reply as Redis words it.
    pub fn run(
        &mut self,
        sha: &str,
        body: &[u8],
        keys: &[Bytes],
        argv: &[Bytes],
        limits: &Limits,
        call: &mut Call<'_>,
    ) -> Reply {
        let function = match self.compile(sha, body) {
            Ok(function) => function,
            Err(text) => {
                return Reply::Error(format!("ERR Error compiling script (new function): {text}"));
            }
        };
        let outcome = self.execute(&function, keys, argv, limits, call);
        let _ = self.current.raw_set("fn", Value::Nil);
        self.lua.remove_app_data::<RunClock>();
        // The state goes back to the pool: nothing of this script's data stays in it.
        let globals = self.lua.globals();
        let _ = globals.raw_set("KEYS", Value::Nil);
        let _ = globals.raw_set("ARGV", Value::Nil);
        match outcome {
            Ok(Outcome::Reply(reply)) => reply,
            Ok(Outcome::Error { text, line }) => {
                Reply::Error(format!("{text} script: {sha}, on @user_script:{line}."))
            }
            Err(e) => Reply::Error(format!("ERR {e} script: {sha}")),
        }
    }

    fn compile(&mut self, sha: &str, body: &[u8]) -> Result<Function, String> {
        if let Some(function) = self.compiled.get(sha) {
            return Ok(function.clone());
        }
        let function = self
            .lua
            .load(body)
            .set_name("@user_script")
            // Never bytecode: Lua 5.1's checker of it can be fooled (Redis's CVE-2015-4335).
            .set_mode(mlua::ChunkMode::Text)
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })?;
        if self.compiled.len() >= COMPILED_PER_ENGINE_MAX {
            self.compiled.clear();
        }
        self.compiled.insert(sha.to_string(), function.clone());
        Ok(function)
    }

    fn execute(
        &self,
        function: &Function,
        keys: &[Bytes],
        argv: &[Bytes],
        limits: &Limits,
        call: &mut Call<'_>,
    ) -> mlua::Result<Outcome> {
        let lua = &self.lua;
        let globals = lua.globals();
        globals.raw_set("KEYS", strings_table(lua, keys)?)?;
        globals.raw_set("ARGV", strings_table(lua, argv)?)?;
        lua.set_app_data(RunClock {
            state: limits.state.clone(),
            started: Instant::now(),
            busy_after: limits.busy_after,
            moved: AtomicBool::new(false),
        });
        lua.set_app_data(ErrorLine(-1));
        lua.set_app_data(Resp(2));
        lua.scope(|scope| {
            let dispatch = scope.create_function_mut(|lua, args: MultiValue| {
                let reply = match command_args(lua, args) {
                    Ok(args) => call(args),
                    Err(text) => Reply::Error(text.to_string()),
                };
                let failed = reply.is_error();
                Ok((reply_to_lua(lua, &reply, Resp::of(lua))?, failed))
            })?;
            self.current.raw_set("fn", dispatch)?;
            let (ok, result): (bool, Value) = self.trampoline.call((function, &self.handler))?;
            let line = lua.app_data_ref::<ErrorLine>().map_or(-1, |line| line.0);
            Ok(match ok {
                true => Outcome::Reply(lua_to_reply(&result, Resp::of(lua))),
                false => Outcome::Error {
                    text: error_text(&result),
                    line,
                },
            })
        })
    }
}

/// Called once a script has run [`MOVE_OTHERS_AFTER`] on a runtime worker: makes sure
/// another worker is awake, so that the network is still polled and the other clients are
/// served (answered `BUSY` on a single node) while this one runs the script. A worker that
/// found the script's request may be the one that polled the network, and the others may
/// sleep until something wakes them: a client then waited for the whole script (the
/// scripting test found it under load).
///
/// The current worker's queue is handed to a new thread (`block_in_place`), and a task sent
/// from outside the worker wakes a sleeping one; the handing off is waited for until that
/// task ran. Outside a multi-threaded runtime this does nothing.
fn wake_another_worker() {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return;
    }
    tokio::task::block_in_place(|| {
        let (ran, wait) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = ran.send(());
        });
        let _ = wait.recv_timeout(WAKE_WAIT_MAX);
    });
}

/// The longest a script waits for another worker to wake ([`wake_another_worker`]).
const WAKE_WAIT_MAX: Duration = Duration::from_millis(100);

/// The protocol the running script chose with `redis.setresp` (2 until it does): how
/// replies convert to Lua values, and booleans back.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Resp(u8);

impl Resp {
    fn of(lua: &Lua) -> Resp {
        lua.app_data_ref::<Resp>().map_or(Resp(2), |resp| *resp)
    }
}

/// The line of the script where its error was raised, noted by the error handler.
struct ErrorLine(i64);

/// The clock of the script running, which the hook checks every [`HOOK_INSTRUCTIONS`]
/// instructions: past its time the node is busy and `SCRIPT KILL` may stop it.
struct RunClock {
    state: Arc<ScriptState>,
    started: Instant,
    busy_after: Duration,
    /// Whether another worker was woken ([`wake_another_worker`]).
    moved: AtomicBool,
}

impl RunClock {
    /// Whether `SCRIPT KILL` (or the server stopping) stopped this script.
    fn killed(&self) -> bool {
        self.started.elapsed() >= self.busy_after && self.state.kill.load(Relaxed)
    }

    fn check(&self) -> mlua::Result<VmState> {
        let elapsed = self.started.elapsed();
        if elapsed >= MOVE_OTHERS_AFTER && !self.moved.swap(true, Relaxed) {
            wake_another_worker();
        }
        if elapsed >= self.busy_after {
            self.state.busy.store(true, Relaxed);
            if self.state.kill.load(Relaxed) {
                return Err(mlua::Error::RuntimeError(
                    "ERR Script killed by user with SCRIPT KILL...".into(),
                ));
            }
        }
        Ok(VmState::Continue)
    }
}

/// What bounds one script run.
pub struct Limits {
    /// The node's script state (busy, kill).
    pub state: Arc<ScriptState>,
    /// `busy-reply-threshold`: past it, the node answers `BUSY` and `SCRIPT KILL` applies.
    pub busy_after: Duration,
}

/// A `redis.call` whose command failed: raised as this error (`raises`), or returned as
/// `{err=...}` by `redis.pcall`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CallFailed(String);

/// `redis.call` (`raises`) or `redis.pcall`: Rust functions, so that the script's frame
/// stays on the stack under them even in `return redis.call(...)` (Lua drops the frame of
/// a tail call to a Lua function), and the error names the script's line as Redis does.
fn call_function(lua: &Lua, current: &Table, raises: bool) -> mlua::Result<Function> {
    let current = current.clone();
    lua.create_function(move |_, args: MultiValue| {
        let dispatch: Function = current.raw_get("fn")?;
        let (reply, failed): (Value, bool) = dispatch.call(args)?;
        if failed && raises {
            return Err(mlua::Error::external(CallFailed(error_text(&reply))));
        }
        Ok(reply)
    })
}

/// The current line of the innermost frame of the script's own code, or -1.
fn script_line(lua: &Lua) -> i64 {
    (0..)
        .map_while(|level| lua.inspect_stack(level))
        .find(|frame| frame.source().source.as_deref() == Some("@user_script"))
        .map_or(-1, |frame| i64::from(frame.curr_line()))
}

/// A 1-based Lua array of byte strings.
fn strings_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_seti(i + 1, lua.create_string(item)?)?;
    }
    Ok(table)
}

/// `redis.call`'s arguments as a command, with Redis's errors for none or a bad one.
fn command_args(lua: &Lua, args: MultiValue) -> Result<Vec<Bytes>, &'static str> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call");
    }
    args.into_iter()
        .map(|arg| match arg {
            Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(_) | Value::Number(_) => lua
                .coerce_string(arg)
                .ok()
                .flatten()
                .map(|s| Bytes::copy_from_slice(&s.as_bytes()))
                .ok_or("ERR Lua redis lib command arguments must be strings or integers"),
            _ => Err("ERR Lua redis lib command arguments must be strings or integers"),
        })
        .collect()
}

/// A reply as Lua sees it, by Redis's rules: integers as numbers, bulk strings as strings,
/// a status as `{ok=...}`, an error as `{err=...}`, arrays as tables; in RESP2 a nil as
/// `false` and the RESP3 types as their RESP2 forms; in RESP3 (`redis.setresp(3)`) a nil
/// as nil, a map as `{map={k=v}}`, a set as `{set={m=true}}`, a double as `{double=n}`, a
/// boolean as a boolean, a big number as `{big_number=s}`, a verbatim string as
/// `{verbatim_string={format=f, string=s}}`.
fn reply_to_lua(lua: &Lua, reply: &Reply, resp: Resp) -> mlua::Result<Value> {
    let single = |field: &str, value: Value| -> mlua::Result<Value> {
        let table = lua.create_table()?;
        table.raw_set(field, value)?;
        Ok(Value::Table(table))
    };
    let string =
        |bytes: &[u8]| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(bytes)?)) };
    let resp3 = resp == Resp(3);
    Ok(match reply {
        Reply::Integer(n) => Value::Number(*n as f64),
        Reply::Bulk(b) => string(b)?,
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Ok => single("ok", string(b"OK")?)?,
        Reply::Simple(text) => single("ok", string(text.as_bytes())?)?,
        Reply::Status(text) => single("ok", string(text.as_bytes())?)?,
        Reply::Error(text) => single("err", string(text.as_bytes())?)?,
        Reply::Double(f) if resp3 => single("double", Value::Number(*f))?,
        Reply::Double(f) => string(format_double_g17(*f).as_bytes())?,
        Reply::Bool(b) if resp3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Number(f64::from(u8::from(*b))),
        Reply::BigNumber(digits) if resp3 => single("big_number", string(digits)?)?,
        Reply::Verbatim(text) if resp3 => verbatim_to_lua(lua, b"txt", text)?,
        Reply::VerbatimAs(format, text) if resp3 => verbatim_to_lua(lua, format, text)?,
        Reply::BigNumber(b) | Reply::Verbatim(b) | Reply::VerbatimAs(_, b) => string(b)?,
        Reply::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set_field(&set, reply_to_lua(lua, item, resp)?, Value::Boolean(true))?;
            }
            single("set", Value::Table(set))?
        }
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                set_field(
                    &map,
                    reply_to_lua(lua, k, resp)?,
                    reply_to_lua(lua, v, resp)?,
                )?;
            }
            single("map", Value::Table(map))?
        }
        Reply::Pairs(pairs) if resp3 => {
            let table = lua.create_table_with_capacity(pairs.len(), 0)?;
            for (i, (a, b)) in pairs.iter().enumerate() {
                let pair = lua.create_table_with_capacity(2, 0)?;
                pair.raw_seti(1, reply_to_lua(lua, a, resp)?)?;
                pair.raw_seti(2, reply_to_lua(lua, b, resp)?)?;
                table.raw_seti(i + 1, pair)?;
            }
            Value::Table(table)
        }
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Several(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_seti(i + 1, reply_to_lua(lua, item, resp)?)?;
            }
            Value::Table(table)
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            let table = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                table.raw_seti(2 * i + 1, reply_to_lua(lua, k, resp)?)?;
                table.raw_seti(2 * i + 2, reply_to_lua(lua, v, resp)?)?;
            }
            Value::Table(table)
        }
    })
}

/// `t[k] = v` as `lua_settable` does it for a reply's map or set: a nil key (a RESP3 null)
/// is skipped rather than raised.
fn set_field(table: &Table, key: Value, value: Value) -> mlua::Result<()> {
    match key {
        Value::Nil => Ok(()),
        Value::Number(n) if n.is_nan() => Ok(()),
        key => table.raw_set(key, value),
    }
}

fn verbatim_to_lua(lua: &Lua, format: &[u8], text: &[u8]) -> mlua::Result<Value> {
    let inner = lua.create_table()?;
    inner.raw_set("format", lua.create_string(format)?)?;
    inner.raw_set("string", lua.create_string(text)?)?;
    let outer = lua.create_table()?;
    outer.raw_set("verbatim_string", inner)?;
    Ok(Value::Table(outer))
}

/// A script's return value as a reply (Redis's rules): numbers truncated to integers (as
/// C casts them: `INT64_MIN` past the range), strings as bulk strings, `true` as 1 and
/// `false`/`nil` as nil (booleans as booleans after `redis.setresp(3)`), a table with
/// `err`/`ok`/`double`/`big_number`/`map`/`set`/`verbatim_string` as that reply, any
/// other table as an array up to its first nil.
fn lua_to_reply(value: &Value, resp: Resp) -> Reply {
    lua_to_reply_at(value, 0, resp)
}

/// How deep a returned table may nest: past it (a table that holds itself, say) the reply
/// is Redis's error rather than a stack overflow.
const REPLY_DEPTH_MAX: usize = 200;

fn lua_to_reply_at(value: &Value, depth: usize, resp: Resp) -> Reply {
    if depth > REPLY_DEPTH_MAX {
        return Reply::error("ERR reached lua stack limit");
    }
    match value {
        Value::Nil => Reply::Nil,
        Value::Boolean(b) if resp == Resp(3) => Reply::Bool(*b),
        // As Redis 7.0 converts them for both protocols when the script speaks RESP2.
        Value::Boolean(true) => Reply::Integer(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(n) => Reply::Integer(*n),
        Value::Number(f) => Reply::Integer(clib::c_double_to_i64(*f)),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(table) => table_to_reply(table, depth, resp),
        _ => Reply::Nil,
    }
}

fn table_to_reply(table: &Table, depth: usize, resp: Resp) -> Reply {
    let field = |name: &str| table.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(err) = field("err") {
        return Reply::Error(err.to_string_lossy());
    }
    if let Value::String(ok) = field("ok") {
        return Reply::Status(ok.to_string_lossy().replace(['\r', '\n'], " "));
    }
    match field("double") {
        Value::Number(f) => return Reply::Double(f),
        Value::Integer(n) => return Reply::Double(n as f64),
        _ => {}
    }
    if let Value::String(digits) = field("big_number") {
        // Redis's addReplyBigNum turns line breaks into spaces, as for a status.
        let digits: Vec<u8> = (digits.as_bytes().iter())
            .map(|&b| match b {
                b'\r' | b'\n' => b' ',
                b => b,
            })
            .collect();
        return Reply::BigNumber(digits.into());
    }
    if let Value::Table(map) = field("map") {
        let pairs = map
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    lua_to_reply_at(&k, depth + 1, resp),
                    lua_to_reply_at(&v, depth + 1, resp),
                )
            })
            .collect();
        return Reply::Map(pairs);
    }
    if let Value::Table(set) = field("set") {
        let members = set
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| lua_to_reply_at(&k, depth + 1, resp))
            .collect();
        return Reply::Set(members);
    }
    if let Value::Table(verbatim) = field("verbatim_string") {
        let format = verbatim.raw_get::<Value>("format").unwrap_or(Value::Nil);
        let text = verbatim.raw_get::<Value>("string").unwrap_or(Value::Nil);
        if let (Value::String(format), Value::String(text)) = (format, text) {
            let mut three = [0u8; 3];
            for (slot, b) in three.iter_mut().zip(format.as_bytes().iter()) {
                *slot = *b;
            }
            return Reply::VerbatimAs(three, Bytes::copy_from_slice(&text.as_bytes()));
        }
    }
    let mut items = Vec::new();
    for i in 1.. {
        match table.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(item) => items.push(lua_to_reply_at(&item, depth + 1, resp)),
        }
    }
    Reply::Array(items)
}

/// The text of what a script raised: an error table's `err` as it is, a string (Lua's
/// position already in front) after `ERR `.
fn error_text(raised: &Value) -> String {
    match raised {
        Value::Table(table) => match table.raw_get::<Value>("err") {
            Ok(Value::String(err)) => err.to_string_lossy(),
            _ => "ERR unknown error".to_string(),
        },
        Value::String(s) => format!("ERR {}", s.to_string_lossy()),
        Value::Error(e) => rust_error_text(e),
        other => format!("ERR {other:?}"),
    }
}

/// What a script's `pcall` sees of an error raised by Rust code: a library's error (the
/// text `luaL_error` would raise) and a failed `redis.call` (its reply's text) as strings,
/// as Redis's C code raises them; anything else as it is.
fn plain_error(lua: &Lua, raised: Value) -> mlua::Result<Value> {
    let Value::Error(e) = &raised else {
        return Ok(raised);
    };
    match raised_text(e) {
        Some(text) => Ok(Value::String(lua.create_string(text)?)),
        None => Ok(raised),
    }
}

/// The text of a library's error or of a failed `redis.call`, under mlua's wrapping.
fn raised_text(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::CallbackError { cause, .. } => raised_text(cause),
        mlua::Error::ExternalError(external) => {
            if let Some(CallFailed(text)) = external.downcast_ref::<CallFailed>() {
                return Some(text.clone());
            }
            external
                .downcast_ref::<clib::LibError>()
                .map(|clib::LibError(text)| text.clone())
        }
        _ => None,
    }
}

/// The text of an error raised by Rust code under the script: a failed `redis.call` as
/// its reply said, the time limit's and memory's errors as Redis words them.
fn rust_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => rust_error_text(cause),
        mlua::Error::ExternalError(external) => match external.downcast_ref::<CallFailed>() {
            Some(CallFailed(text)) => text.clone(),
            // A library's error, as Redis's error handler words a raised string.
            None => format!("ERR {external}"),
        },
        mlua::Error::RuntimeError(text) if text.starts_with("ERR ") => text.clone(),
        mlua::Error::MemoryError(text) => format!("ERR {text}"),
        other => format!("ERR {other}"),
    }
}

/// `redis.REPL_ALL`: every replication flag of `redis.set_repl`.
const REPL_ALL: i32 = 3;

/// An error raised by a `redis.*` function, as Redis raises its `{err=...}` (the text
/// starts with its code).
fn raise(text: &str) -> mlua::Error {
    mlua::Error::RuntimeError(text.to_string())
}

/// `redis.*` besides `call` and `pcall` (which [`Engine::new`] adds).
fn redis_library(lua: &Lua) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, s: mlua::String| Ok(sha1_hex(&s.as_bytes())))?,
    )?;
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, s: mlua::String| {
            let table = lua.create_table()?;
            let text = s.to_string_lossy();
            // Redis 7 puts the generic code in front of a text that has none.
            let text = match text.starts_with('-') {
                true => text[1..].to_string(),
                false => text,
            };
            table.raw_set("err", text)?;
            Ok(table)
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, s: mlua::String| {
            let table = lua.create_table()?;
            table.raw_set("ok", s)?;
            Ok(table)
        })?,
    )?;
    redis.raw_set(
        "log",
        lua.create_function(|_, (level, message): (i64, mlua::String)| {
            let message = message.to_string_lossy();
            match level {
                0 => tracing::debug!(target: "script", "{message}"),
                1 => tracing::info!(target: "script", "{message}"),
                2 => tracing::info!(target: "script", "{message}"),
                _ => tracing::warn!(target: "script", "{message}"),
            }
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "setresp",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise("ERR redis.setresp() requires one argument."));
            }
            let version = clib::to_number(lua, &args[0]).map_or(0, clib::c_double_to_i32);
            if version != 2 && version != 3 {
                return Err(raise("ERR RESP version must be 2 or 3."));
            }
            lua.set_app_data(Resp(version as u8));
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "set_repl",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise("ERR redis.set_repl() requires two arguments."));
            }
            // Every flag is accepted and means nothing here: ringcache replicates the
            // script's writes as its commands, whatever the script asks.
            let flags = clib::to_number(lua, &args[0]).map_or(0, clib::c_double_to_i32);
            if flags & !REPL_ALL != 0 {
                return Err(raise(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or \
                     REPL_NONE.",
                ));
            }
            Ok(())
        })?,
    )?;
    redis.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    // Outside SCRIPT DEBUG (which ringcache does not offer) Redis's answers: no breakpoint,
    // nothing to print.
    redis.raw_set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set(
        "acl_check_cmd",
        lua.create_function(|lua, args: MultiValue| {
            let args = command_args(lua, args).map_err(raise)?;
            // One user with every permission: a command that exists is allowed.
            match ringcache_resp::cmd::lookup(&args[0]) {
                Some(_) => Ok(true),
                None => Err(raise("ERR Invalid command passed to redis.acl_check_cmd()")),
            }
        })?,
    )?;
    for (name, value) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", REPL_ALL),
    ] {
        redis.raw_set(name, value)?;
    }
    redis.raw_set("REDIS_VERSION", "7.0.15")?;
    redis.raw_set("REDIS_VERSION_NUM", 0x07000f)?;
    Ok(redis)
}

/// A `bit` function of one operand.
type Unary = (&'static str, fn(i32) -> i32);
/// A `bit` function folding its operands.
type Fold = (&'static str, fn(i32, i32) -> i32);
/// A `bit` shift or rotation.
type Shift = (&'static str, fn(i32, u32) -> i32);

/// LuaBitOp's `bit` library: 32-bit operations on numbers, results signed as LuaBitOp's.
fn bit_library(lua: &Lua) -> mlua::Result<Table> {
    fn tobit(x: f64) -> i32 {
        // LuaBitOp normalizes through 2^52 + 2^51 so any double maps mod 2^32.
        let wrapped = x.rem_euclid(4_294_967_296.0);
        wrapped as u32 as i32
    }
    let bit = lua.create_table()?;
    let unary: [Unary; 3] = [
        ("tobit", |x| x),
        ("bnot", |x| !x),
        ("bswap", |x| x.swap_bytes()),
    ];
    for (name, op) in unary {
        bit.raw_set(
            name,
            lua.create_function(move |_, x: f64| Ok(op(tobit(x))))?,
        )?;
    }
    let folds: [Fold; 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in folds {
        let f = lua.create_function(move |_, (first, rest): (f64, mlua::Variadic<f64>)| {
            Ok(rest.iter().fold(tobit(first), |acc, &x| op(acc, tobit(x))))
        })?;
        bit.raw_set(name, f)?;
    }
    let shifts: [Shift; 5] = [
        ("lshift", |x, n| ((x as u32) << n) as i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ];
    for (name, op) in shifts {
        let f = lua.create_function(move |_, (x, n): (f64, f64)| {
            Ok(op(tobit(x), (tobit(n) & 31) as u32))
        })?;
        bit.raw_set(name, f)?;
    }
    let tohex = lua.create_function(|_, (x, n): (f64, Option<f64>)| {
        let n = n.map_or(8, tobit);
        let (upper, digits) = (n < 0, n.unsigned_abs().min(8) as usize);
        let value = tobit(x) as u32 as u64;
        let text = format!("{value:08x}");
        let text = text[8 - digits..].to_string();
        Ok(if upper { text.to_uppercase() } else { text })
    })?;
    bit.raw_set("tohex", tohex)?;
    Ok(bit)
}

/// `cjson.encode` and `cjson.decode`, through serde_json: tables with keys 1..n are arrays,
/// others objects; JSON null decodes to `cjson.null` (a light sentinel).
fn cjson_library(lua: &Lua) -> mlua::Result<Table> {
    let cjson = lua.create_table()?;
    cjson.raw_set(
        "encode",
        lua.create_function(|_, value: Value| {
            let json = lua_to_json(&value, 0).map_err(mlua::Error::RuntimeError)?;
            Ok(json.to_string())
        })?,
    )?;
    cjson.raw_set(
        "decode",
        lua.create_function(|lua, text: mlua::String| {
            let json: serde_json::Value = serde_json::from_slice(&text.as_bytes())
                .map_err(|e| mlua::Error::RuntimeError(format!("cjson.decode: {e}")))?;
            json_to_lua(lua, &json, 0)
        })?,
    )?;
    cjson.raw_set(
        "null",
        Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())),
    )?;
    Ok(cjson)
}

/// How deep a JSON value (or a table being encoded) may nest: cjson's default.
const JSON_DEPTH_MAX: usize = 1000;

fn lua_to_json(value: &Value, depth: usize) -> Result<serde_json::Value, String> {
    if depth > JSON_DEPTH_MAX {
        return Err("Cannot serialise, excessive nesting (1001)".into());
    }
    Ok(match value {
        Value::Nil | Value::LightUserData(_) => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(n) => serde_json::Value::from(*n),
        Value::Number(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
            serde_json::Value::from(*f as i64)
        }
        Value::Number(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or("Cannot serialise number: must not be NaN or Inf")?,
        Value::String(s) => serde_json::Value::String(s.to_string_lossy()),
        Value::Table(table) => table_to_json(table, depth)?,
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ));
        }
    })
}

fn table_to_json(table: &Table, depth: usize) -> Result<serde_json::Value, String> {
    let len = table.raw_len();
    let pairs: Vec<(Value, Value)> = table
        .pairs::<Value, Value>()
        .filter_map(Result::ok)
        .collect();
    if pairs.len() == len && len > 0 || pairs.is_empty() {
        let mut items = Vec::with_capacity(len);
        for i in 1..=len {
            let item: Value = table.raw_get(i).map_err(|e| e.to_string())?;
            items.push(lua_to_json(&item, depth + 1)?);
        }
        // cjson encodes an empty table as an object.
        if pairs.is_empty() {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        }
        return Ok(serde_json::Value::Array(items));
    }
    let mut object = serde_json::Map::new();
    for (k, v) in pairs {
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(n) => n.to_string(),
            Value::Number(f) => format_double_g17(*f),
            _ => return Err("Cannot serialise table: table key must be a number or string".into()),
        };
        object.insert(key, lua_to_json(&v, depth + 1)?);
    }
    Ok(serde_json::Value::Object(object))
}

fn json_to_lua(lua: &Lua, json: &serde_json::Value, depth: usize) -> mlua::Result<Value> {
    if depth > JSON_DEPTH_MAX {
        return Err(mlua::Error::RuntimeError(
            "cjson.decode: too many nested data structures".into(),
        ));
    }
    Ok(match json {
        serde_json::Value::Null => Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_seti(i + 1, json_to_lua(lua, item, depth + 1)?)?;
            }
            Value::Table(table)
        }
        serde_json::Value::Object(map) => {
            let table = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                table.raw_set(k.as_str(), json_to_lua(lua, v, depth + 1)?)?;
            }
            Value::Table(table)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, keys: &[&str], argv: &[&str]) -> Reply {
        let mut engine = Engine::new().expect("engine");
        let limits = Limits {
            state: Arc::new(ScriptState::default()),
            busy_after: Duration::from_secs(5),
        };
        let keys: Vec<Bytes> = keys
            .iter()
            .map(|k| Bytes::copy_from_slice(k.as_bytes()))
            .collect();
        let argv: Vec<Bytes> = argv
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let mut call = |args: Vec<Bytes>| match args[0].as_ref() {
            b"echo" => Reply::Bulk(args[1].clone()),
            b"fail" => Reply::Error("ERR failed here".into()),
            _ => Reply::Ok,
        };
        engine.run(
            &sha1_hex(body.as_bytes()),
            body.as_bytes(),
            &keys,
            &argv,
            &limits,
            &mut call,
        )
    }

    #[test]
    fn values_convert_as_redis_converts_them() {
        assert_eq!(run("return 3.99", &[], &[]), Reply::Integer(3));
        assert_eq!(run("return -3.99", &[], &[]), Reply::Integer(-3));
        assert_eq!(
            run("return {1,'a',{2},nil,5}", &[], &[]),
            Reply::Array(vec![
                Reply::Integer(1),
                Reply::Bulk(Bytes::from_static(b"a")),
                Reply::Array(vec![Reply::Integer(2)]),
            ])
        );
        assert_eq!(
            run("return KEYS[1] .. ARGV[2]", &["k"], &["a", "b"]),
            Reply::Bulk(Bytes::from_static(b"kb"))
        );
        assert_eq!(
            run("return redis.call('echo', 7)", &[], &[]),
            Reply::Bulk(Bytes::from_static(b"7"))
        );
        assert_eq!(
            run("return redis.pcall('fail').err", &[], &[]),
            Reply::Bulk(Bytes::from_static(b"ERR failed here"))
        );
        assert_eq!(
            run("return redis.call('set').ok", &[], &[]),
            Reply::Bulk(Bytes::from_static(b"OK"))
        );
    }

    #[test]
    fn errors_name_the_script_and_its_line() {
        let sha = sha1_hex(b"\nreturn redis.call('fail')");
        assert_eq!(
            run("\nreturn redis.call('fail')", &[], &[]),
            Reply::Error(format!("ERR failed here script: {sha}, on @user_script:2."))
        );
        let sha = sha1_hex(b"return x");
        assert_eq!(
            run("return x", &[], &[]),
            Reply::Error(format!(
                "ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: {sha}, on @user_script:1."
            ))
        );
        assert_eq!(
            run("return =", &[], &[]),
            Reply::Error("ERR Error compiling script (new function): user_script:1: unexpected symbol near '='".into())
        );
    }

    #[test]
    fn the_sandbox_keeps_files_and_code_loading_out() {
        for body in [
            "return os.time()",
            "return io.open('/etc/passwd')",
            "return loadstring",
            "dofile('/x')",
            "return debug.getinfo(1)",
            "x = 1",
        ] {
            assert!(
                run(body, &[], &[]).is_error() || run(body, &[], &[]) == Reply::Nil,
                "{body}"
            );
        }
        assert_eq!(run("return bit.band(7, 3)", &[], &[]), Reply::Integer(3));
        assert_eq!(
            run("return bit.tohex(255, 4)", &[], &[]),
            Reply::Bulk(Bytes::from_static(b"00ff"))
        );
        assert_eq!(
            run("return cjson.encode({1,2,{a=1}})", &[], &[]),
            Reply::Bulk(Bytes::from_static(b"[1,2,{\"a\":1}]"))
        );
        assert_eq!(
            run("return cjson.decode('[1,2,3]')[2]", &[], &[]),
            Reply::Integer(2)
        );
    }

    #[test]
    fn scripts_cannot_escape_nor_leave_anything_for_the_next() {
        // Bytecode, a table that holds itself, and changes to what the next script sees.
        let bytecode = run("return '\\27Lua'", &[], &[]);
        assert!(!bytecode.is_error(), "{bytecode:?}");
        let mut engine = Engine::new().expect("engine");
        let limits = Limits {
            state: Arc::new(ScriptState::default()),
            busy_after: Duration::from_secs(5),
        };
        let mut call = |_: Vec<Bytes>| Reply::Ok;
        let mut eval =
            |body: &[u8]| engine.run(&sha1_hex(body), body, &[], &[], &limits, &mut call);
        assert!(eval(b"\x1bLua\x51\x00").is_error(), "bytecode is refused");
        // As Redis: the arrays down to the limit, the error there.
        let mut nested = eval(b"local t = {} t[1] = t return t");
        let mut depth = 0;
        while let Reply::Array(mut items) = nested {
            nested = items.pop().expect("one item");
            depth += 1;
        }
        assert_eq!(nested, Reply::Error("ERR reached lua stack limit".into()));
        assert_eq!(depth, REPLY_DEPTH_MAX + 1);
        for body in [
            &b"redis.call = function() return 'hijacked' end"[..],
            b"string.len = function() return 0 end",
            b"getmetatable('').__index = {}",
            b"setmetatable(_G, nil)",
            b"rawset(_G, 'x', 1)",
            b"return coroutine.wrap(function() end)",
            b"return string.dump(function() end)",
        ] {
            let reply = eval(body);
            assert!(
                reply.is_error(),
                "{}: {reply:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(eval(b"return string.len('abc')"), Reply::Integer(3));
        assert_eq!(
            eval(b"return redis.call('x').ok"),
            Reply::Bulk(Bytes::from_static(b"OK"))
        );
    }

    #[test]
    fn hostile_msgpack_and_struct_input_fails_cleanly() {
        // A table repeated 16 levels deep packs 4^16 leaves: refused at the output bound.
        let wide = run(
            "local t = {} for i = 1, 16 do t = {t, t, t, t} end return cmsgpack.pack(t)",
            &[],
            &[],
        );
        assert!(
            matches!(&wide, Reply::Error(t) if t.contains("not enough memory")),
            "{wide:?}"
        );
        for body in [
            "return cmsgpack.unpack(string.rep('\\145', 200000))",
            "return cmsgpack.unpack(string.rep('\\129\\1', 200000))",
            "return cmsgpack.unpack('\\221\\255\\255\\255\\255')",
            "return cmsgpack.unpack('\\219\\255\\255\\255\\255ab')",
            "return cmsgpack.unpack(string.rep('\\161a', 100000))",
            "return struct.unpack(string.rep('c1', 100000), string.rep('a', 100000))",
            "return struct.pack('i4294967296', 1)",
        ] {
            assert!(run(body, &[], &[]).is_error(), "{body}");
        }
        assert_eq!(
            run(
                "return cmsgpack.unpack(cmsgpack.pack({1, {a = 'b'}}))[2].a",
                &[],
                &[]
            ),
            Reply::Bulk(Bytes::from_static(b"b"))
        );
    }

    #[test]
    fn a_script_that_catches_errors_is_killed_all_the_same() {
        let mut engine = Engine::new().expect("engine");
        let state = Arc::new(ScriptState::default());
        state.kill.store(true, Relaxed);
        let limits = Limits {
            state,
            busy_after: Duration::from_millis(10),
        };
        let body = b"while true do pcall(function() while true do end end) end";
        let reply = engine.run(&sha1_hex(body), body, &[], &[], &limits, &mut |_| Reply::Ok);
        assert!(
            matches!(&reply, Reply::Error(t) if t.starts_with("ERR Script killed by user")),
            "{reply:?}"
        );
    }

    #[test]
    fn a_script_that_runs_away_is_killed_once_busy() {
        let mut engine = Engine::new().expect("engine");
        let state = Arc::new(ScriptState::default());
        state.kill.store(true, Relaxed);
        let limits = Limits {
            state: state.clone(),
            busy_after: Duration::from_millis(10),
        };
        let body = b"while true do end";
        let reply = engine.run(&sha1_hex(body), body, &[], &[], &limits, &mut |_| Reply::Ok);
        assert!(
            matches!(&reply, Reply::Error(t) if t.starts_with("ERR Script killed by user")),
            "{reply:?}"
        );
        assert!(state.busy.load(Relaxed));
    }
}
