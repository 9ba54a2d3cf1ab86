//! `cmsgpack`, as Redis bundles it (lua-cmsgpack 0.4.0, `deps/lua/src/lua_cmsgpack.c`):
//! `pack(v, ...)`, `unpack(s)`, `unpack_one(s [, offset])`, `unpack_limit(s, n [, offset])`.
//!
//! # Format
//! MessagePack as lua-cmsgpack writes it: a number that is an integer (fits `int64_t`)
//! as the smallest of fixint, `uint8/16/32/64` (`0xcc-0xcf`) or `int8/16/32/64`
//! (`0xd0-0xd3`); any other number as a float32 (`0xca`) when that loses nothing, else a
//! float64 (`0xcb`); strings as fixstr, str8 (`0xd9`), str16, str32; a table whose keys
//! are exactly 1..n as an array (fixarray, `0xdc`, `0xdd`), any other as a map in `next`
//! order; `true`/`false`; anything else (nil, functions, `cjson.null`) and tables nested
//! deeper than [`NESTING_MAX`] as nil (`0xc0`). Decoding reads those types and no others
//! (`bin`, `ext` and `0xc1` are `Bad data format in input.`); a `uint64` above `INT64_MAX`
//! wraps negative, as `lua_pushinteger` leaves it.
//!
//! # Bounds
//! Decoding is iterative (a deep input does not deepen the Rust stack) and allocates only
//! as it reads: a count is never trusted for a capacity. Its depth and result count are
//! bounded as Lua bounds the C original's stack ([`C_STACK_SLOTS_MAX`], same errors at
//! the same sizes), and by [`REFERENCES_MAX`]; the packed output by [`PACK_BYTES_MAX`].

use mlua::{Lua, MultiValue, Table, Value};

use super::clib::{
    self, C_STACK_SLOTS_MAX, REFERENCES_MAX, RESULTS_MAX, c_double_to_i32, c_double_to_i64,
    holds_reference,
};

/// Table nesting `pack` follows; a deeper table (a table that holds itself) packs as nil.
pub const NESTING_MAX: usize = 16;
/// Bytes `pack` may produce: the Lua state's own memory bound, so a table that repeats
/// itself 16 levels deep fails instead of taking the node's memory.
pub const PACK_BYTES_MAX: usize = super::SCRIPT_MEMORY_BYTES_MAX;

const TOO_MANY_RESULTS: &str =
    "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";
const ARRAY_TOO_DEEP: &str = "stack overflow (in function mp_decode_to_lua_array)";

/// The `cmsgpack` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let cmsgpack = lua.create_table()?;
    cmsgpack.raw_set("pack", lua.create_function(pack)?)?;
    cmsgpack.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let base = args.len();
            unpack(lua, &args, base, 0, 0)
        })?,
    )?;
    cmsgpack.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let offset = clib::opt_integer(lua, &args, 2, 0)?;
            unpack(lua, &args, 1, 1, offset)
        })?,
    )?;
    cmsgpack.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let limit = match args.get(1).and_then(|v| clib::to_number(lua, v)) {
                Some(n) => c_double_to_i64(n),
                None => return Err(clib::type_error(lua, &args, 2, "number")),
            };
            let offset = clib::opt_integer(lua, &args, 3, 0)?;
            unpack(lua, &args, 1, limit, offset)
        })?,
    )?;
    cmsgpack.raw_set("_NAME", "cmsgpack")?;
    cmsgpack.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    cmsgpack.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    cmsgpack.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(cmsgpack)
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    if args.is_empty() {
        return Err(clib::arg_error(lua, 0, "MessagePack pack needs input."));
    }
    // lua_checkstack(L, nargs) with the arguments already on the stack.
    if 2 * args.len() > C_STACK_SLOTS_MAX {
        return Err(clib::arg_error(
            lua,
            0,
            "Too many arguments for MessagePack pack.",
        ));
    }
    let mut out = Vec::new();
    for value in args.iter() {
        encode(lua, value, 0, &mut out)?;
    }
    lua.create_string(&out)
}

fn push(lua: &Lua, out: &mut Vec<u8>, bytes: &[u8]) -> mlua::Result<()> {
    if out.len() + bytes.len() > PACK_BYTES_MAX {
        return Err(clib::error(lua, "not enough memory"));
    }
    out.extend_from_slice(bytes);
    Ok(())
}

fn encode(lua: &Lua, value: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match value {
        Value::String(s) => {
            let bytes = s.as_bytes();
            let len = bytes.len();
            let header: &[u8] = &match len {
                0..32 => vec![0xa0 | len as u8],
                32..=0xff => vec![0xd9, len as u8],
                0x100..=0xffff => vec![0xda, (len >> 8) as u8, len as u8],
                _ => {
                    let mut h = vec![0xdb];
                    h.extend_from_slice(&(len as u32).to_be_bytes());
                    h
                }
            };
            push(lua, out, header)?;
            push(lua, out, &bytes)
        }
        Value::Boolean(b) => push(lua, out, &[if *b { 0xc3 } else { 0xc2 }]),
        Value::Integer(n) => encode_int(lua, out, *n),
        Value::Number(n) => {
            let n = *n;
            if !n.is_infinite() && c_double_to_i64(n) as f64 == n {
                encode_int(lua, out, c_double_to_i64(n))
            } else if n == (n as f32) as f64 {
                let mut b = vec![0xca];
                b.extend_from_slice(&(n as f32).to_be_bytes());
                push(lua, out, &b)
            } else {
                let mut b = vec![0xcb];
                b.extend_from_slice(&n.to_be_bytes());
                push(lua, out, &b)
            }
        }
        Value::Table(table) if level < NESTING_MAX => encode_table(lua, table, level, out),
        _ => push(lua, out, &[0xc0]),
    }
}

fn encode_int(lua: &Lua, out: &mut Vec<u8>, n: i64) -> mlua::Result<()> {
    let mut b = Vec::with_capacity(9);
    match n {
        0..=127 => b.push(n as u8),
        128..=0xff => b.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            b.push(0xcd);
            b.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            b.push(0xce);
            b.extend_from_slice(&(n as u32).to_be_bytes());
        }
        0x1_0000_0000.. => {
            b.push(0xcf);
            b.extend_from_slice(&(n as u64).to_be_bytes());
        }
        -32..=-1 => b.push(n as i8 as u8),
        -128..=-33 => b.extend_from_slice(&[0xd0, n as i8 as u8]),
        -32768..=-129 => {
            b.push(0xd1);
            b.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            b.push(0xd2);
            b.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            b.push(0xd3);
            b.extend_from_slice(&n.to_be_bytes());
        }
    }
    push(lua, out, &b)
}

/// A table whose keys are exactly the numbers 1..n (each an `int`) packs as an array.
fn is_array(table: &Table) -> bool {
    let (mut count, mut max) = (0i64, 0i32);
    for pair in table.pairs::<Value, Value>() {
        let Ok((key, _)) = pair else { return false };
        let n = match key {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return false,
        };
        if n <= 0.0 || n.is_infinite() || c_double_to_i32(n) as f64 != n {
            return false;
        }
        max = max.max(n as i32);
        count += 1;
    }
    i64::from(max) == count
}

fn encode_table(lua: &Lua, table: &Table, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    if is_array(table) {
        let len = table.raw_len();
        encode_length(lua, out, len as u64, 0x90, 0xdc)?;
        for i in 1..=len {
            let item: Value = table.raw_get(i)?;
            encode(lua, &item, level + 1, out)?;
        }
        return Ok(());
    }
    let len = table.pairs::<Value, Value>().count();
    encode_length(lua, out, len as u64, 0x80, 0xde)?;
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair?;
        encode(lua, &key, level + 1, out)?;
        encode(lua, &value, level + 1, out)?;
    }
    Ok(())
}

/// An array's or a map's header: `fix | n` up to 15, then the 16- and 32-bit forms.
fn encode_length(lua: &Lua, out: &mut Vec<u8>, n: u64, fix: u8, wide: u8) -> mlua::Result<()> {
    match n {
        0..=15 => push(lua, out, &[fix | n as u8]),
        16..=65535 => push(lua, out, &[wide, (n >> 8) as u8, n as u8]),
        _ => {
            let mut b = vec![wide + 1];
            b.extend_from_slice(&(n as u32).to_be_bytes());
            push(lua, out, &b)
        }
    }
}

/// Why decoding stopped.
enum Stop {
    /// `Missing bytes in input.`
    Eof,
    /// `Bad data format in input.`
    BadFormat,
    /// Any other error (stack overflow, a nil table index, memory), already worded.
    Lua(mlua::Error),
}

impl From<mlua::Error> for Stop {
    fn from(e: mlua::Error) -> Stop {
        Stop::Lua(e)
    }
}

/// The unpack functions: `limit` values (0 with offset 0: all of them) from `offset`;
/// `base` is how many arguments the C original leaves on its stack.
fn unpack(
    lua: &Lua,
    args: &MultiValue,
    base: usize,
    limit: i64,
    offset: i64,
) -> mlua::Result<MultiValue> {
    let input = clib::check_bytes(lua, args, 1)?;
    let len = input.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // Redis's text prints the input's length where it says limit.
        return Err(clib::error(
            lua,
            &format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32, len as i32
            ),
        ));
    }
    if offset as u64 > len as u64 {
        return Err(clib::error(
            lua,
            &format!(
                "Start offset {} greater than input length {}.",
                offset as i32, len as i32
            ),
        ));
    }
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut cursor = Cursor {
        bytes: &input,
        at: offset as usize,
    };
    let mut results = Vec::new();
    let mut references = 0;
    while cursor.at < len && (results.len() as i64) < limit {
        if results.len() + usize::from(!decode_all) >= RESULTS_MAX {
            return Err(clib::error(lua, TOO_MANY_RESULTS));
        }
        let decoded = decode(lua, &mut cursor, base + results.len(), references);
        match decoded {
            Ok(value) => {
                references += usize::from(holds_reference(&value));
                results.push(value);
            }
            Err(Stop::Eof) => return Err(clib::error(lua, "Missing bytes in input.")),
            Err(Stop::BadFormat) => return Err(clib::error(lua, "Bad data format in input.")),
            Err(Stop::Lua(e)) => return Err(e),
        }
    }
    if !decode_all {
        let next = if cursor.at == len {
            -1
        } else {
            cursor.at as i64
        };
        results.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_vec(results))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    /// The next `n` bytes, consumed; `Eof` (nothing consumed) when fewer are left.
    fn take(&mut self, n: usize) -> Result<&[u8], Stop> {
        if self.bytes.len() - self.at < n {
            return Err(Stop::Eof);
        }
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    fn peek(&self, n: usize) -> Result<&[u8], Stop> {
        match self.bytes.len() - self.at < n {
            true => Err(Stop::Eof),
            false => Ok(&self.bytes[self.at..self.at + n]),
        }
    }
}

/// A table being filled.
enum Open {
    /// Elements left to read, and the next index.
    Array { table: Table, left: u64, index: i64 },
    /// Pairs left to read, and the key read whose value comes next.
    Map {
        table: Table,
        left: u64,
        key: Option<Value>,
    },
}

impl Open {
    /// Stack slots the C original holds for this table while it decodes a child: the
    /// table and the index (array) or the key (map, while decoding a value).
    fn slots(&self) -> usize {
        match self {
            Open::Array { .. } => 2,
            Open::Map { key, .. } => 1 + usize::from(key.is_some()),
        }
    }

    fn references(&self) -> usize {
        match self {
            Open::Array { .. } => 1,
            Open::Map { key, .. } => 1 + usize::from(key.as_ref().is_some_and(holds_reference)),
        }
    }
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// One value from `cursor`, with `used` stack slots (the C original's) already taken
/// and `references` values already held.
fn decode(
    lua: &Lua,
    cursor: &mut Cursor<'_>,
    used: usize,
    references: usize,
) -> Result<Value, Stop> {
    let mut open: Vec<Open> = Vec::new();
    // Slots and references of the open tables, kept as they change.
    // The slots and references of the tables under each open one, so that the totals are
    // found without walking them all.
    let mut below: Vec<(usize, usize)> = Vec::new();
    let (mut open_slots, mut open_references) = (0usize, 0usize);
    loop {
        let first = cursor.peek(1)?[0];
        if used + open_slots + 1 > C_STACK_SLOTS_MAX {
            return Err(Stop::Lua(clib::error(lua, TOO_MANY_RESULTS)));
        }
        if references + open_references + 1 > REFERENCES_MAX {
            return Err(Stop::Lua(clib::error(lua, TOO_MANY_RESULTS)));
        }
        let mut value = match first {
            0xcc => Value::Number(f64::from(cursor.take(2)?[1])),
            0xd0 => Value::Number(f64::from(cursor.take(2)?[1] as i8)),
            0xcd => Value::Number(be(&cursor.take(3)?[1..]) as f64),
            0xd1 => Value::Number(f64::from(be(&cursor.take(3)?[1..]) as u16 as i16)),
            0xce => Value::Number(be(&cursor.take(5)?[1..]) as f64),
            0xd2 => Value::Number(f64::from(be(&cursor.take(5)?[1..]) as u32 as i32)),
            // lua_pushinteger of a uint64_t: above INT64_MAX it wraps negative.
            0xcf => Value::Number(be(&cursor.take(9)?[1..]) as i64 as f64),
            0xd3 => Value::Number(be(&cursor.take(9)?[1..]) as i64 as f64),
            0xc0 => {
                cursor.take(1)?;
                Value::Nil
            }
            0xc3 | 0xc2 => Value::Boolean(cursor.take(1)?[0] == 0xc3),
            0xca => {
                let b = cursor.take(5)?;
                Value::Number(f64::from(f32::from_be_bytes([b[1], b[2], b[3], b[4]])))
            }
            0xcb => {
                let b = cursor.take(9)?;
                Value::Number(f64::from_be_bytes(b[1..9].try_into().expect("8 bytes")))
            }
            0xd9..=0xdb => {
                let header = match first {
                    0xd9 => 2,
                    0xda => 3,
                    _ => 5,
                };
                let len = be(&cursor.peek(header)?[1..]) as usize;
                let text = &cursor.take(header.saturating_add(len))?[header..];
                Value::String(lua.create_string(text)?)
            }
            0xdc..=0xdf => {
                let header = if first & 1 == 0 { 3 } else { 5 };
                let len = be(&cursor.take(header)?[1..]);
                let opened = match first {
                    0xdc | 0xdd => open_array(lua, &mut open, len, used + open_slots)?,
                    _ => open_map(lua, &mut open, len)?,
                };
                match opened {
                    Some(empty) => empty,
                    None => {
                        (open_slots, open_references) = totals(&open, &mut below);
                        continue;
                    }
                }
            }
            0x00..=0x7f => {
                cursor.take(1)?;
                Value::Number(f64::from(first))
            }
            0xe0..=0xff => {
                cursor.take(1)?;
                Value::Number(f64::from(first as i8))
            }
            0xa0..=0xbf => {
                let len = usize::from(first & 0x1f);
                let text = &cursor.take(1 + len)?[1..];
                Value::String(lua.create_string(text)?)
            }
            0x90..=0x9f => {
                cursor.take(1)?;
                match open_array(lua, &mut open, u64::from(first & 0xf), used + open_slots)? {
                    Some(empty) => empty,
                    None => {
                        (open_slots, open_references) = totals(&open, &mut below);
                        continue;
                    }
                }
            }
            0x80..=0x8f => {
                cursor.take(1)?;
                match open_map(lua, &mut open, u64::from(first & 0xf))? {
                    Some(empty) => empty,
                    None => {
                        (open_slots, open_references) = totals(&open, &mut below);
                        continue;
                    }
                }
            }
            _ => return Err(Stop::BadFormat),
        };
        // Hand the value to the open tables, closing those it completes.
        loop {
            let Some(top) = open.last_mut() else {
                return Ok(value);
            };
            match top {
                Open::Array { table, left, index } => {
                    if value != Value::Nil {
                        table.raw_set(*index, value)?;
                    }
                    *index += 1;
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                }
                Open::Map {
                    key: key @ None, ..
                } => {
                    *key = Some(value);
                    break;
                }
                Open::Map { table, left, key } => {
                    let k = key.take().expect("a key was read");
                    match &k {
                        Value::Nil => {
                            return Err(Stop::Lua(clib::error_bare("table index is nil")));
                        }
                        Value::Number(n) if n.is_nan() => {
                            return Err(Stop::Lua(clib::error_bare("table index is NaN")));
                        }
                        _ => {}
                    }
                    table.raw_set(k, value)?;
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                }
            }
            below.pop();
            value = match open.pop() {
                Some(Open::Array { table, .. } | Open::Map { table, .. }) => Value::Table(table),
                None => unreachable!("a table was open"),
            };
        }
        (open_slots, open_references) = totals(&open, &mut below);
    }
}

/// The stack slots and references the open tables hold; `below` follows `open` (a table
/// just opened gets the totals under it).
fn totals(open: &[Open], below: &mut Vec<(usize, usize)>) -> (usize, usize) {
    while below.len() < open.len() {
        let under = match (below.last(), open.get(below.len().wrapping_sub(1))) {
            (Some(&(slots, refs)), Some(frame)) => {
                (slots + frame.slots(), refs + frame.references())
            }
            _ => (0, 0),
        };
        below.push(under);
    }
    match (below.last(), open.last()) {
        (Some(&(slots, refs)), Some(top)) => (slots + top.slots(), refs + top.references()),
        _ => (0, 0),
    }
}

/// Starts an array of `len` elements: the empty table itself when `len` is 0, else
/// `None` with the table open. `used` is the C original's slots in use before the table.
fn open_array(
    lua: &Lua,
    open: &mut Vec<Open>,
    len: u64,
    used: usize,
) -> Result<Option<Value>, Stop> {
    let table = lua.create_table()?;
    // lua_newtable, then luaL_checkstack(L, 1, ...).
    if used + 2 > C_STACK_SLOTS_MAX {
        return Err(Stop::Lua(clib::error(lua, ARRAY_TOO_DEEP)));
    }
    if len == 0 {
        return Ok(Some(Value::Table(table)));
    }
    open.push(Open::Array {
        table,
        left: len,
        index: 1,
    });
    Ok(None)
}

fn open_map(lua: &Lua, open: &mut Vec<Open>, len: u64) -> Result<Option<Value>, Stop> {
    let table = lua.create_table()?;
    if len == 0 {
        return Ok(Some(Value::Table(table)));
    }
    open.push(Open::Map {
        table,
        left: len,
        key: None,
    });
    Ok(None)
}
