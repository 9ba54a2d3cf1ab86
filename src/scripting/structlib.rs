//! `struct`, as Redis bundles it (Roberto Ierusalimschy's struct library with Redis's
//! fixes, `deps/lua/src/lua_struct.c`): `pack(fmt, ...)`, `unpack(fmt, s [, pos])`,
//! `size(fmt)`.
//!
//! # Format
//! `>` big endian, `<` little endian (the default: x86-64's), `![n]` alignment (a power of
//! 2; 8 without n), `x` a zero byte, `b/B` `h/H` `l/L` `T` `i[n]/I[n]` signed/unsigned
//! integers of 1, 2, 8, 8 and n bytes (4 by default, at most [`INT_BYTES_MAX`]), `f`/`d`
//! float and double, `c[n]` n bytes (`c0`: the whole string when packing, the previous
//! number's length when unpacking), `s` a zero-terminated string, ` ` ignored. The format
//! ends at its first zero byte, as a C string does. Numbers convert as the C casts do on
//! x86-64 (`2^64` packs as 0, NaN as `INT64_MIN`).
//!
//! # Differences
//! Where the C original reads past the data (an alignment that moves the position past
//! the end of the data is not caught by its length check), this one reports `data string
//! too short`. Results holding strings are bounded by [`REFERENCES_MAX`] besides Lua's
//! stack (`stack overflow (too many results)`, at the same count as Redis for numbers).

use mlua::{Lua, MultiValue, Table, Value};

use super::clib::{
    self, C_STACK_SLOTS_MAX, REFERENCES_MAX, RESULTS_MAX, c_double_to_i64, c_double_to_u64,
};

/// The widest integer `i`/`I` take (`MAXINTSIZE`).
pub const INT_BYTES_MAX: i32 = 32;
/// `!` without a number: the alignment of a double on x86-64 (`MAXALIGN`).
const ALIGN_MAX: i32 = 8;

/// The `struct` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.raw_set("pack", lua.create_function(pack)?)?;
    table.raw_set("unpack", lua.create_function(unpack)?)?;
    table.raw_set("size", lua.create_function(size)?)?;
    Ok(table)
}

#[derive(Clone, Copy)]
struct Header {
    little: bool,
    align: u64,
}

impl Default for Header {
    fn default() -> Header {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// The format: bytes up to the first zero.
fn format(lua: &Lua, args: &MultiValue) -> mlua::Result<Vec<u8>> {
    let mut fmt = clib::check_bytes(lua, args, 1)?;
    if let Some(end) = fmt.iter().position(|&b| b == 0) {
        fmt.truncate(end);
    }
    Ok(fmt)
}

/// `getnum`: the digits at `fmt[*at..]`, or `default`.
fn number(lua: &Lua, fmt: &[u8], at: &mut usize, default: i32) -> mlua::Result<i32> {
    if !fmt.get(*at).is_some_and(u8::is_ascii_digit) {
        return Ok(default);
    }
    let mut a: i32 = 0;
    while let Some(&d) = fmt.get(*at).filter(|d| d.is_ascii_digit()) {
        let digit = i32::from(d - b'0');
        if a > i32::MAX / 10 || a * 10 > i32::MAX - digit {
            return Err(clib::error(lua, "integral size overflow"));
        }
        a = a * 10 + digit;
        *at += 1;
    }
    Ok(a)
}

/// `optsize`: the bytes option `opt` takes (0 for the control options).
fn option_size(lua: &Lua, opt: u8, fmt: &[u8], at: &mut usize) -> mlua::Result<u64> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => number(lua, fmt, at, 1)? as u64,
        b'i' | b'I' => {
            let size = number(lua, fmt, at, 4)?;
            if size > INT_BYTES_MAX {
                return Err(clib::error(
                    lua,
                    &format!("integral size {size} is larger than limit of {INT_BYTES_MAX}"),
                ));
            }
            size as u64
        }
        _ => 0,
    })
}

/// `gettoalign`: padding before an option of `size` bytes at `len`.
fn padding(len: u64, header: &Header, opt: u8, size: u64) -> u64 {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(header.align);
    (size.wrapping_sub(len & (size - 1))) & (size - 1)
}

/// `controloptions`: endianness, alignment, spaces; anything else is refused.
fn control(
    lua: &Lua,
    opt: u8,
    fmt: &[u8],
    at: &mut usize,
    header: &mut Header,
) -> mlua::Result<()> {
    match opt {
        b' ' => {}
        b'>' => header.little = false,
        b'<' => header.little = true,
        b'!' => {
            let a = number(lua, fmt, at, ALIGN_MAX)?;
            if a <= 0 || a & (a - 1) != 0 {
                return Err(clib::error(
                    lua,
                    &format!("alignment {a} is not a power of 2"),
                ));
            }
            header.align = a as u64;
        }
        _ => {
            let text = format!("invalid format option '{}'", char::from(opt));
            return Err(clib::arg_error(lua, 1, &text));
        }
    }
    Ok(())
}

/// Argument `narg` of `pack`, which pushed a nil after its arguments (`got nil` for the
/// first one missing, `got no value` past it).
fn pack_number(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<f64> {
    if narg == args.len() + 1 {
        return Err(clib::arg_error(
            lua,
            narg as i64,
            "number expected, got nil",
        ));
    }
    clib::check_number(lua, args, narg)
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let fmt = format(lua, &args)?;
    let mut header = Header::default();
    let mut arg = 2;
    let mut out: Vec<u8> = Vec::new();
    let mut at = 0;
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let mut size = option_size(lua, opt, &fmt, &mut at)?;
        let pad = padding(out.len() as u64, &header, opt, size);
        out.resize(out.len() + pad as usize, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = pack_number(lua, &args, arg)?;
                arg += 1;
                let mut value = if n < 0.0 {
                    c_double_to_i64(n) as u64
                } else {
                    c_double_to_u64(n)
                };
                let mut bytes = [0u8; INT_BYTES_MAX as usize];
                for byte in bytes.iter_mut().take(size as usize) {
                    *byte = value as u8;
                    value >>= 8;
                }
                let bytes = &mut bytes[..size as usize];
                if !header.little {
                    bytes.reverse();
                }
                out.extend_from_slice(bytes);
            }
            b'x' => out.push(0),
            b'f' | b'd' => {
                let n = pack_number(lua, &args, arg)?;
                arg += 1;
                let mut bytes = match opt {
                    b'f' => (n as f32).to_le_bytes().to_vec(),
                    _ => n.to_le_bytes().to_vec(),
                };
                if !header.little {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }
            b'c' | b's' => {
                if arg == args.len() + 1 {
                    return Err(clib::arg_error(lua, arg as i64, "string expected, got nil"));
                }
                let s = clib::check_bytes(lua, &args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len() as u64;
                }
                if (s.len() as u64) < size {
                    // The C original names the argument after the string's.
                    return Err(clib::arg_error(lua, arg as i64, "string too short"));
                }
                out.extend_from_slice(&s[..size as usize]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => control(lua, opt, &fmt, &mut at, &mut header)?,
        }
    }
    lua.create_string(&out)
}

fn integer(bytes: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let mut push = |b: u8| l = (l << 8) | u64::from(b);
    match little {
        true => bytes.iter().rev().for_each(|&b| push(b)),
        false => bytes.iter().for_each(|&b| push(b)),
    }
    if !signed {
        return l as f64;
    }
    // As the C shift does on x86-64: the count modulo 64.
    let mask = u64::MAX.wrapping_shl((bytes.len() as i64 * 8 - 1) as u32);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = format(lua, &args)?;
    let data = clib::check_bytes(lua, &args, 2)?;
    let ld = data.len() as u64;
    let mut pos = clib::opt_integer(lua, &args, 3, 1)? as u64;
    if pos == 0 {
        return Err(clib::arg_error(lua, 3, "offset must be 1 or greater"));
    }
    pos -= 1;
    let mut header = Header::default();
    let mut results: Vec<Value> = Vec::new();
    let mut references = 0;
    let mut at = 0;
    let too_short = |lua: &Lua| clib::arg_error(lua, 2, "data string too short");
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let mut size = option_size(lua, opt, &fmt, &mut at)?;
        pos = pos.wrapping_add(padding(pos, &header, opt, size));
        if size > ld || pos > ld - size {
            return Err(too_short(lua));
        }
        // luaL_checkstack(L, 2, ...) with the arguments and results on the stack.
        if args.len() + results.len() + 2 > C_STACK_SLOTS_MAX
            || references >= REFERENCES_MAX
            || results.len() + 1 >= RESULTS_MAX
        {
            return Err(clib::error(lua, "stack overflow (too many results)"));
        }
        let at_pos = |size: u64| &data[pos as usize..(pos + size) as usize];
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = integer(at_pos(size), header.little, opt.is_ascii_lowercase());
                results.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let mut b: [u8; 4] = at_pos(4).try_into().expect("4 bytes");
                if !header.little {
                    b.reverse();
                }
                results.push(Value::Number(f64::from(f32::from_le_bytes(b))));
            }
            b'd' => {
                let mut b: [u8; 8] = at_pos(8).try_into().expect("8 bytes");
                if !header.little {
                    b.reverse();
                }
                results.push(Value::Number(f64::from_le_bytes(b)));
            }
            b'c' => {
                if size == 0 {
                    let previous = results.last().and_then(|v| clib::to_number(lua, v));
                    let Some(previous) = previous else {
                        return Err(clib::error(lua, "format 'c0' needs a previous size"));
                    };
                    size = c_double_to_u64(previous);
                    if results.pop().is_some_and(|v| clib::holds_reference(&v)) {
                        references -= 1;
                    }
                    if size > ld - pos {
                        return Err(too_short(lua));
                    }
                }
                results.push(Value::String(lua.create_string(at_pos(size))?));
                references += 1;
            }
            b's' => {
                let rest = &data[pos as usize..];
                let Some(end) = rest.iter().position(|&b| b == 0) else {
                    return Err(clib::error(lua, "unfinished string in data"));
                };
                size = end as u64 + 1;
                results.push(Value::String(lua.create_string(&rest[..end])?));
                references += 1;
            }
            _ => control(lua, opt, &fmt, &mut at, &mut header)?,
        }
        pos = pos.wrapping_add(size);
    }
    results.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(MultiValue::from_vec(results))
}

fn size(lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let fmt = format(lua, &args)?;
    let mut header = Header::default();
    let mut pos: u64 = 0;
    let mut at = 0;
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let size = option_size(lua, opt, &fmt, &mut at)?;
        pos = pos.wrapping_add(padding(pos, &header, opt, size));
        if opt == b's' {
            return Err(clib::arg_error(lua, 1, "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(clib::arg_error(lua, 1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            control(lua, opt, &fmt, &mut at, &mut header)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64 as f64)
}
