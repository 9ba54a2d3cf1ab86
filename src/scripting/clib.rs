//! What the C libraries Redis bundles with Lua see of the Lua C API, for their Rust
//! counterparts ([`super::cmsgpack`], [`super::structlib`]): argument checks worded as
//! `lauxlib`'s (`bad argument #1 to 'unpack' (string expected, got no value)`), errors
//! prefixed with the caller's position as `luaL_error` does (`user_script:1: `), and the
//! conversions of x86-64 C casts. The functions run as Rust callbacks, so level 0 of the
//! Lua stack is the function itself and level 1 its caller, as for a C function.
//!
//! An error is raised as a [`LibError`]; the script's `pcall` sees its text as a plain
//! string (the prelude converts it), as it would see the C library's `luaL_error`.

use mlua::{Lua, MultiValue, Value};

/// Lua 5.1's `LUAI_MAXCSTACK`: the stack slots a C function may use. `lua_checkstack`
/// fails past it, and the C libraries report that as `stack overflow (...)`.
pub const C_STACK_SLOTS_MAX: usize = 8000;

/// An error raised by a library function: its full text, position included.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LibError(pub String);

/// `luaL_error`: `text` after the caller's position (`user_script:3: `; nothing when the
/// caller is a C function such as `pcall`).
pub fn error(lua: &Lua, text: &str) -> mlua::Error {
    mlua::Error::external(LibError(format!("{}{text}", position(lua))))
}

fn position(lua: &Lua) -> String {
    let Some(caller) = lua.inspect_stack(1) else {
        return String::new();
    };
    let line = caller.curr_line();
    if line <= 0 {
        return String::new();
    }
    let source = caller.source();
    let short = source.short_src.as_deref().unwrap_or("?");
    format!("{short}:{line}: ")
}

/// `luaL_argerror`: `bad argument #narg to 'name' (extra)`, the name as the caller wrote
/// it (`?` when it cannot tell, as from `pcall`).
pub fn arg_error(lua: &Lua, narg: i64, extra: &str) -> mlua::Error {
    let (name, method) = match lua.inspect_stack(0) {
        Some(frame) => {
            let names = frame.names();
            (
                names.name.map(|n| n.into_owned()),
                names.name_what == Some("method"),
            )
        }
        None => (None, false),
    };
    let mut narg = narg;
    let name = name.unwrap_or_else(|| "?".to_string());
    if method {
        narg -= 1;
        if narg == 0 {
            return error(lua, &format!("calling '{name}' on bad self ({extra})"));
        }
    }
    error(lua, &format!("bad argument #{narg} to '{name}' ({extra})"))
}

/// `luaL_typename` of argument `narg` (1-based) of `args`.
pub fn type_name(args: &MultiValue, narg: usize) -> &'static str {
    match args.get(narg - 1) {
        None => "no value",
        Some(value) => value_type_name(value),
    }
}

/// `lua_typename` of a value.
pub fn value_type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// `luaL_typerror`.
pub fn type_error(lua: &Lua, args: &MultiValue, narg: usize, expected: &str) -> mlua::Error {
    let got = type_name(args, narg);
    arg_error(lua, narg as i64, &format!("{expected} expected, got {got}"))
}

/// `luaL_checklstring`: a string, or a number converted as Lua converts it (`%.14g`).
pub fn check_bytes(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<Vec<u8>> {
    match args.get(narg - 1) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(value @ (Value::Integer(_) | Value::Number(_))) => {
            match lua.coerce_string(value.clone())? {
                Some(s) => Ok(s.as_bytes().to_vec()),
                None => Err(type_error(lua, args, narg, "string")),
            }
        }
        _ => Err(type_error(lua, args, narg, "string")),
    }
}

/// `lua_tonumber` of a value: a number, or a string that reads as one; `None` otherwise.
pub fn to_number(lua: &Lua, value: &Value) -> Option<f64> {
    match value {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(f) => Some(*f),
        Value::String(_) => lua.coerce_number(value.clone()).ok().flatten(),
        _ => None,
    }
}

/// `luaL_checknumber`.
pub fn check_number(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<f64> {
    args.get(narg - 1)
        .and_then(|value| to_number(lua, value))
        .ok_or_else(|| type_error(lua, args, narg, "number"))
}

/// `luaL_optinteger`: `default` for an absent or nil argument, else `luaL_checkinteger`
/// (the number truncated as C casts it).
pub fn opt_integer(lua: &Lua, args: &MultiValue, narg: usize, default: i64) -> mlua::Result<i64> {
    match args.get(narg - 1) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_number(lua, args, narg).map(c_double_to_i64),
    }
}

/// `(int64_t)d` as x86-64 computes it (`cvttsd2si`): truncation, and `INT64_MIN` for NaN
/// and for what does not fit.
pub fn c_double_to_i64(d: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if d.is_nan() || !(-LIMIT..LIMIT).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// `(uint64_t)d` as gcc compiles it for x86-64: below 2^63 (and NaN) through the signed
/// conversion, above it by subtracting 2^63 first.
pub fn c_double_to_u64(d: f64) -> u64 {
    const HIGH: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if d.is_nan() || d < HIGH {
        c_double_to_i64(d) as u64
    } else {
        (c_double_to_i64(d - HIGH) as u64) ^ (1 << 63)
    }
}

/// `(int)d` as x86-64 computes it: `INT_MIN` for NaN and for what does not fit.
pub fn c_double_to_i32(d: f64) -> i32 {
    if d.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&d) {
        i32::MIN
    } else {
        d as i32
    }
}

/// Whether a value holds a reference into mlua's auxiliary stack while kept in Rust
/// (strings, tables, functions...): results are bounded by how many such values they hold.
pub fn holds_reference(value: &Value) -> bool {
    !matches!(
        value,
        Value::Nil
            | Value::Boolean(_)
            | Value::Integer(_)
            | Value::Number(_)
            | Value::LightUserData(_)
    )
}

/// Values holding references a library function may keep at once (decoded results and
/// the tables being filled): mlua keeps each in a slot of an auxiliary Lua stack, which
/// cannot grow past [`C_STACK_SLOTS_MAX`] and is shared with the state's other handles.
/// Past it the library reports the stack overflow its C original reports at Lua's limit.
pub const REFERENCES_MAX: usize = 6000;

/// `luaG_runerror` raised while a C function runs: the text without a position.
pub fn error_bare(text: &str) -> mlua::Error {
    mlua::Error::external(LibError(text.to_string()))
}

/// Values a library function may return at once. mlua pushes a Rust function's results
/// with a margin of its own below Lua's [`C_STACK_SLOTS_MAX`] (it failed at 7998 here), so
/// a few counts Redis still returns (up to 7999) end in the library's own stack overflow
/// error instead.
pub const RESULTS_MAX: usize = 7990;
