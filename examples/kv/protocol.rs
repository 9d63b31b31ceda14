//! The memcached text protocol, the subset `kv` serves: `get`, `gets`, `set`, `add`, `delete`
//! (with `noreply`), and memcached's answers to everything else. Parsing only: no store, no I/O.
//!
//! The rules follow memcached 1.6 (`proto_text.c`), checked byte for byte against Debian's
//! memcached 1.6.18 by tests/kv.rs: a line ends at `\n` (a `\r` before it is dropped if the
//! line has more than one byte) and at the first NUL; tokens are separated by single spaces,
//! at most 24 counted; numbers are read as C's `strtol`/`strtoul` read them (leading blanks, a
//! sign, trailing blanks allowed, the result truncated to 32 bits); `noreply` suppresses the
//! one answer of its command, errors included.

/// memcached's `KEY_MAX_LENGTH`.
pub const KEY_MAX: usize = 250;
/// memcached's default item size limit (`-I 1m`), which counts the item's header too.
pub const ITEM_SIZE_MAX: usize = 1 << 20;
/// A line longer than this without a `\n` closes the connection unless it is a `get`/`gets`
/// (memcached's rule for its 2048-byte read buffer).
pub const LINE_MAX: usize = 2048;
/// The longest `get`/`gets` line kept (memcached grows its buffer without bound; `kv` closes
/// the connection beyond this). memcslap's `mget` sends 20,000 keys of ~40 bytes in one line.
pub const GET_LINE_MAX: usize = 2 << 20;

/// `ERROR\r\n`: unknown command or wrong number of tokens.
pub const ERROR: &[u8] = b"ERROR\r\n";
/// `CLIENT_ERROR bad command line format\r\n`.
pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
/// The `delete` usage error, as memcached spells it (two spaces included).
pub const BAD_DELETE: &[u8] =
    b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
/// The data block did not end with `\r\n`.
pub const BAD_DATA_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
/// The item exceeds [`ITEM_SIZE_MAX`].
pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
/// `STORED\r\n`.
pub const STORED: &[u8] = b"STORED\r\n";
/// `NOT_STORED\r\n`.
pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
/// `DELETED\r\n`.
pub const DELETED: &[u8] = b"DELETED\r\n";
/// `NOT_FOUND\r\n`.
pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
/// Ends a `get` answer.
pub const END: &[u8] = b"END\r\n";

/// memcached's `REALTIME_MAXDELTA`: exptimes up to 30 days are relative, larger ones absolute.
pub const RELATIVE_MAX: i64 = 60 * 60 * 24 * 30;

/// Which storage command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Store unconditionally.
    Set,
    /// Store only if the key holds no live item.
    Add,
}

/// One parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `get`/`gets`: the keys (all at most [`KEY_MAX`] long), in order; `cas` for `gets`.
    Get {
        /// Whether the answer carries the cas unique (`gets`).
        cas: bool,
        /// The rest of the line after the command: keys separated by spaces.
        keys: &'a [u8],
    },
    /// `set`/`add` whose item fits: a data block of `len` bytes (the value and `\r\n`) follows.
    Store {
        /// set or add.
        kind: StoreKind,
        /// The key.
        key: &'a [u8],
        /// The client flags.
        flags: u32,
        /// The exptime as memcached keeps it (32 bits).
        exptime: i32,
        /// Bytes of the data block, the trailing `\r\n` included.
        len: usize,
        /// No answer wanted.
        noreply: bool,
    },
    /// `set`/`add` whose item is too large: answer [`TOO_LARGE`], discard the next `swallow`
    /// bytes; for `set`, the key's old item is removed (memcached keeps no stale value).
    TooLarge {
        /// set or add.
        kind: StoreKind,
        /// The key.
        key: &'a [u8],
        /// Bytes of the data block to discard.
        swallow: usize,
        /// No answer wanted.
        noreply: bool,
    },
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// No answer wanted.
        noreply: bool,
    },
    /// A fixed answer (an error), unless `noreply`.
    Reply {
        /// The answer with its `\r\n`.
        text: &'static [u8],
        /// Suppressed by `noreply`.
        noreply: bool,
    },
    /// Send what is queued, then close (`quit`, or an HTTP request line).
    Close,
}

/// The line at the front of `buf`: `Some((line, consumed))` once a `\n` is there, with the
/// `\r` before it dropped as memcached drops it and the line cut at its first NUL.
pub fn split_line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    Some((clean_line(&buf[..nl]), nl + 1))
}

/// A line without its `\n`: `\r` dropped if the line is longer than one byte, cut at a NUL.
pub fn clean_line(raw: &[u8]) -> &[u8] {
    let mut line = raw;
    if line.len() > 1 && line[line.len() - 1] == b'\r' {
        line = &line[..line.len() - 1];
    }
    match line.iter().position(|&b| b == 0) {
        Some(z) => &line[..z],
        None => line,
    }
}

/// What to do about `buffered` bytes that hold no `\n` yet: `true` to keep waiting (the line
/// may still come), `false` to close the connection (memcached: past 2048 bytes only a `get`
/// or `gets` after at most 100 spaces may go on).
pub fn partial_line_ok(buffered: &[u8]) -> bool {
    if buffered.len() <= LINE_MAX {
        return true;
    }
    let spaces = buffered.iter().take_while(|&&b| b == b' ').count();
    let rest = &buffered[spaces..];
    spaces <= 100
        && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
        && buffered.len() <= GET_LINE_MAX
}

/// The tokens of a line: runs of bytes between spaces.
pub fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// memcached's tokenizer stops after 23 tokens and counts a terminal one: `ntokens`.
const MAX_TOKENS: usize = 24;

/// Parses one command line (as [`split_line`] returns it).
pub fn parse(line: &[u8]) -> Command<'_> {
    let mut toks: [&[u8]; MAX_TOKENS - 1] = [&[]; MAX_TOKENS - 1];
    let mut count = 0;
    for t in tokens(line) {
        if count == toks.len() {
            count += 1; // more than memcached looks at
            break;
        }
        toks[count] = t;
        count += 1;
    }
    // memcached's ntokens: the tokens seen (at most 23) and the terminal one.
    let ntokens = count.min(MAX_TOKENS - 1) + 1;
    let error = Command::Reply {
        text: ERROR,
        noreply: false,
    };
    if count == 0 || toks[0].len() < 2 {
        return error;
    }
    let cmd = toks[0];
    match cmd[0] {
        b'g' => {
            if ntokens < 3 {
                return error;
            }
            let cas = match cmd {
                b"get" => false,
                b"gets" => true,
                _ => return error,
            };
            // The keys: everything after the command word.
            let start = cmd.as_ptr() as usize - line.as_ptr() as usize + cmd.len();
            let keys = &line[start..];
            if tokens(keys).any(|k| k.len() > KEY_MAX) {
                return Command::Reply {
                    text: BAD_FORMAT,
                    noreply: false,
                };
            }
            Command::Get { cas, keys }
        }
        b's' | b'a' => {
            let kind = match cmd {
                b"set" => StoreKind::Set,
                b"add" => StoreKind::Add,
                _ => return error,
            };
            if ntokens != 6 && ntokens != 7 {
                return error;
            }
            update(kind, &toks[..count])
        }
        b'd' => {
            if cmd != b"delete" {
                return error;
            }
            if !(3..=5).contains(&ntokens) {
                return error;
            }
            delete(&toks[..count])
        }
        // Commands of memcached's that this subset does not serve (cas, incr, touch, meta).
        b'c' | b'i' | b't' => error,
        b'm' if cmd.len() == 2 => error,
        _ if cmd == b"quit" => Command::Close,
        _ => {
            // memcached closes on what looks like an HTTP request line.
            if toks[ntokens - 2].starts_with(b"HTTP/") {
                Command::Close
            } else {
                error
            }
        }
    }
}

/// `set`/`add <key> <flags> <exptime> <bytes> [noreply]` (5 or 6 tokens).
fn update<'a>(kind: StoreKind, t: &[&'a [u8]]) -> Command<'a> {
    // memcached looks at the last token for "noreply", whatever else is wrong.
    let noreply = t.len() == 6 && t[5] == b"noreply";
    let bad = Command::Reply {
        text: BAD_FORMAT,
        noreply,
    };
    let key = t[1];
    if key.len() > KEY_MAX {
        return bad;
    }
    let (Some(flags), Some(exptime), Some(vlen)) =
        (strtoul32(t[2]), strtol32(t[3]), strtol32(t[4]))
    else {
        return bad;
    };
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return bad;
    }
    let len = vlen as usize + 2;
    if !item_size_ok(key.len(), flags, len) {
        return Command::TooLarge {
            kind,
            key,
            swallow: len,
            noreply,
        };
    }
    Command::Store {
        kind,
        key,
        flags,
        exptime,
        len,
        noreply,
    }
}

/// memcached's `item_size_ok`: the item header (48 bytes), the key and its NUL, the flags if
/// not 0, the data with `\r\n`, and the cas must fit [`ITEM_SIZE_MAX`].
pub fn item_size_ok(key_len: usize, flags: u32, data_len: usize) -> bool {
    let flag_bytes = if flags == 0 { 0 } else { 4 };
    48 + key_len + 1 + flag_bytes + data_len + 8 <= ITEM_SIZE_MAX
}

/// `delete <key> [0] [noreply]` (2 to 4 tokens).
fn delete<'a>(t: &[&'a [u8]]) -> Command<'a> {
    let mut noreply = false;
    if t.len() > 2 {
        let hold_is_zero = t[2] == b"0";
        noreply = t[t.len() - 1] == b"noreply";
        let valid = (t.len() == 3 && (hold_is_zero || noreply))
            || (t.len() == 4 && hold_is_zero && noreply);
        if !valid {
            return Command::Reply {
                text: BAD_DELETE,
                noreply,
            };
        }
    }
    let key = t[1];
    if key.len() > KEY_MAX {
        return Command::Reply {
            text: BAD_FORMAT,
            noreply,
        };
    }
    Command::Delete { key, noreply }
}

fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C's `strtoul`/`strtol` digits: (negative, magnitude) or `None` if there are no digits, the
/// magnitude overflows 64 bits, or something other than blanks follows.
fn c_number(s: &[u8]) -> Option<(bool, u64)> {
    let mut i = s.iter().take_while(|&&b| c_isspace(b)).count();
    let mut neg = false;
    if let Some(&c @ (b'+' | b'-')) = s.get(i) {
        neg = c == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).filter(|b| b.is_ascii_digit()) {
        match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
        {
            Some(n) => v = n,
            None => overflow = true,
        }
        i += 1;
    }
    if i == digits_start || overflow {
        return None;
    }
    if i < s.len() && !c_isspace(s[i]) {
        return None;
    }
    Some((neg, v))
}

/// memcached's `safe_strtol` into an `int32_t`: a `long` (64 bits, range-checked) truncated.
pub fn strtol32(s: &[u8]) -> Option<i32> {
    let (neg, mag) = c_number(s)?;
    let v: i64 = if neg {
        if mag > 1 << 63 {
            return None;
        }
        (mag as i64).wrapping_neg()
    } else {
        i64::try_from(mag).ok()?
    };
    Some(v as i32)
}

/// memcached's `safe_strtoul` into a `uint32_t`: an `unsigned long` (negated if signed, as C
/// does), refused if it looks negative as a `long` and the text has a '-', then truncated.
pub fn strtoul32(s: &[u8]) -> Option<u32> {
    let (neg, mag) = c_number(s)?;
    let v = if neg { mag.wrapping_neg() } else { mag };
    if (v as i64) < 0 && s.contains(&b'-') {
        return None;
    }
    Some(v as u32)
}

/// When an item set now (`now_unix`, seconds since the epoch) with `exptime` expires, in
/// seconds since the epoch; 0 for never. memcached: 0 never; negative at once; up to 30 days
/// relative; above, an absolute Unix time (in the past: at once).
pub fn expiry(exptime: i32, now_unix: u64) -> u64 {
    match i64::from(exptime) {
        0 => 0,
        e if e < 0 => 1,
        e if e <= RELATIVE_MAX => now_unix + e as u64,
        e => e as u64,
    }
}
