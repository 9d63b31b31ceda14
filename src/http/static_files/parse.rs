//! The request fields a static file server reads, parsed without allocating: conditionals
//! (RFC 9110 13: `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`,
//! `If-Range`), byte ranges (RFC 9110 14) and `Accept-Encoding` (RFC 9110 12.5.3). Where the
//! RFC leaves a choice, the choice is nginx's, so that the two servers answer alike (see
//! `tests/http_vs_nginx.rs`).

/// A strong entity tag in nginx's form, `"<mtime secs hex>-<length hex>"`, quotes included.
pub(crate) fn etag(mtime: u64, len: u64) -> String {
    format!("\"{mtime:x}-{len:x}\"")
}

/// An HTTP-date in any of the three formats of RFC 9110 5.6.7 (IMF-fixdate, RFC 850,
/// asctime), as seconds since the Unix epoch (earlier dates count as 0).
pub(crate) fn http_date(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    let t = httpdate::parse_http_date(s).ok()?;
    Some(
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// Whether the entity-tag list `list` (`*`, or tags separated by commas, RFC 9110 8.8.3)
/// matches `etag` (a strong tag, quotes included). `weak`: the weak comparison of RFC 9110
/// 8.8.3.2 (`If-None-Match`: a `W/` tag matches its strong twin); otherwise the strong one
/// (`If-Match`: a `W/` tag never matches).
pub(crate) fn etag_matches(list: &[u8], etag: &[u8], weak: bool) -> bool {
    if list == b"*" {
        return true;
    }
    let mut rest = list;
    loop {
        while let [b' ' | b'\t' | b',', r @ ..] = rest {
            rest = r;
        }
        if rest.is_empty() {
            return false;
        }
        let mut is_weak = false;
        if let [b'W', b'/', r @ ..] = rest {
            is_weak = true;
            rest = r;
        }
        // One element: up to the next comma (an entity tag holds no comma: RFC 9110 8.8.3).
        let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        let mut tag = &rest[..end];
        while let [r @ .., b' ' | b'\t'] = tag {
            tag = r;
        }
        if tag == etag && (weak || !is_weak) {
            return true;
        }
        rest = &rest[end..];
    }
}

/// What a `Range` field asks of a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ranges {
    /// Not a byte range request, or one that is answered whole (200): another unit, ranges
    /// that together are longer than the representation (nginx), a range of an empty one.
    Ignore,
    /// 416: malformed (nginx answers 416 rather than ignoring, as it does) or no range
    /// overlaps the representation.
    Unsatisfiable,
    /// `count` satisfiable ranges; the first is `first` (start, end exclusive).
    Satisfiable { count: usize, first: (u64, u64) },
}

/// Parses a `Range` value against a representation of `len` bytes (RFC 9110 14.1.2), as
/// nginx does: ranges are kept in the order asked, neither merged nor sorted; a range that
/// starts past the end is dropped; every satisfiable range (start, end exclusive) is passed
/// to `each`.
pub(crate) fn parse_ranges(v: &[u8], len: u64, mut each: impl FnMut(u64, u64)) -> Ranges {
    if v.len() < 7 || !v[..6].eq_ignore_ascii_case(b"bytes=") {
        return Ranges::Ignore;
    }
    let mut p = &v[6..];
    let (mut count, mut first, mut total) = (0usize, (0, 0), 0u64);
    fn spaces(p: &mut &[u8]) {
        while let [b' ', r @ ..] = *p {
            *p = r;
        }
    }
    fn number(p: &mut &[u8]) -> Option<u64> {
        let digits = p.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let mut n: u64 = 0;
        for &d in &p[..digits] {
            n = n.checked_mul(10)?.checked_add((d - b'0') as u64)?;
            if n > i64::MAX as u64 {
                return None;
            }
        }
        *p = &p[digits..];
        Some(n)
    }
    loop {
        spaces(&mut p);
        let (start, end);
        if let [b'-', r @ ..] = p {
            p = r;
            let Some(n) = number(&mut p) else {
                return Ranges::Unsatisfiable;
            };
            start = len.saturating_sub(n);
            end = len;
        } else {
            let Some(s) = number(&mut p) else {
                return Ranges::Unsatisfiable;
            };
            spaces(&mut p);
            let [b'-', r @ ..] = p else {
                return Ranges::Unsatisfiable;
            };
            p = r;
            spaces(&mut p);
            start = s;
            if p.is_empty() || p[0] == b',' {
                end = len;
            } else {
                let Some(e) = number(&mut p) else {
                    return Ranges::Unsatisfiable;
                };
                end = e.saturating_add(1).min(len);
            }
        }
        spaces(&mut p);
        if !p.is_empty() && p[0] != b',' {
            return Ranges::Unsatisfiable;
        }
        if start < end {
            if count == 0 {
                first = (start, end);
            }
            count += 1;
            total = total.saturating_add(end - start);
            each(start, end);
        } else if start == 0 {
            // An empty representation: served whole.
            return Ranges::Ignore;
        }
        match p {
            [b',', r @ ..] => p = r,
            _ => break,
        }
    }
    if count == 0 {
        Ranges::Unsatisfiable
    } else if total > len {
        Ranges::Ignore
    } else {
        Ranges::Satisfiable { count, first }
    }
}

/// The quality (0 to 1000) an `Accept-Encoding` value gives `coding` (RFC 9110 12.5.3): its own
/// entry's, else that of `*`, else 0 (not acceptable). Codings compare ASCII
/// case-insensitively; `x-gzip` counts as `gzip` (RFC 9110 8.4.1.3).
pub(crate) fn coding_quality(accept: &[u8], coding: &[u8]) -> u16 {
    let (mut own, mut star) = (None, None);
    for element in accept.split(|&b| b == b',') {
        let mut parts = element.split(|&b| b == b';');
        let name = trim(parts.next().unwrap_or_default());
        if name.is_empty() {
            continue;
        }
        let mut q = 1000;
        for param in parts {
            let param = trim(param);
            if param.len() >= 2 && param[..2].eq_ignore_ascii_case(b"q=") {
                q = qvalue(trim(&param[2..])).unwrap_or(0);
            }
        }
        let is = |c: &[u8]| name.eq_ignore_ascii_case(c);
        if is(coding) || (coding == b"gzip" && is(b"x-gzip")) {
            own = Some(own.map_or(q, |o: u16| o.max(q)));
        } else if is(b"*") {
            star = Some(q);
        }
    }
    own.or(star).unwrap_or(0)
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', r @ ..] = v {
        v = r;
    }
    while let [r @ .., b' ' | b'\t'] = v {
        v = r;
    }
    v
}

/// A qvalue (RFC 9110 12.4.2: `0[.ddd]` or `1[.000]`) in thousandths.
fn qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut q = match int[0] {
        b'0' => 0u16,
        b'1' => 1000,
        _ => return None,
    };
    let mut scale = 100;
    for &d in frac {
        q += (d - b'0') as u16 * scale;
        scale /= 10;
    }
    (q <= 1000).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(v: &str, len: u64) -> (Ranges, Vec<(u64, u64)>) {
        let mut all = Vec::new();
        let r = parse_ranges(v.as_bytes(), len, |s, e| all.push((s, e)));
        (r, all)
    }

    #[test]
    fn range_forms() {
        use Ranges::*;
        let sat = |count, first| Satisfiable { count, first };
        assert_eq!(ranges("bytes=0-4", 10).0, sat(1, (0, 5)));
        assert_eq!(ranges("bytes=5-", 10).0, sat(1, (5, 10)));
        assert_eq!(ranges("bytes=-3", 10).0, sat(1, (7, 10)));
        assert_eq!(ranges("bytes=-30", 10).0, sat(1, (0, 10)));
        assert_eq!(ranges("bytes=8-100", 10).0, sat(1, (8, 10)));
        assert_eq!(ranges("BYTES= 1 - 2 ", 10).0, sat(1, (1, 3)));
        let (r, all) = ranges("bytes=0-1,4-5, -2", 10);
        assert_eq!(r, sat(3, (0, 2)));
        assert_eq!(all, [(0, 2), (4, 6), (8, 10)]);
        // a range past the end is dropped, the others stay
        assert_eq!(ranges("bytes=20-30,0-0", 10).0, sat(1, (0, 1)));
        // longer together than the representation: answered whole
        assert_eq!(ranges("bytes=0-6,2-8", 10).0, Ignore);
        // other units, too short: not ranges at all
        assert_eq!(ranges("items=0-1", 10).0, Ignore);
        assert_eq!(ranges("bytes=", 10).0, Ignore);
        // an empty representation is served whole
        assert_eq!(ranges("bytes=-5", 0).0, Ignore);
        assert_eq!(ranges("bytes=0-", 0).0, Ignore);
        for bad in [
            "bytes=abc",
            "bytes=1-a",
            "bytes=5-2",
            "bytes=-0",
            "bytes=10-",
            "bytes=1-2;",
            "bytes=--1",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(ranges(bad, 10).0, Unsatisfiable, "{bad}");
        }
    }

    #[test]
    fn etag_lists() {
        let e = br#""5f-1a""#;
        assert!(etag_matches(b"*", e, false));
        assert!(etag_matches(br#""5f-1a""#, e, false));
        assert!(etag_matches(br#""x", "5f-1a""#, e, false));
        assert!(etag_matches(br#""x",W/"5f-1a""#, e, true));
        assert!(!etag_matches(br#"W/"5f-1a""#, e, false));
        assert!(!etag_matches(br#""5f-1""#, e, true));
        assert!(!etag_matches(br#""5f-1a"x"#, e, true));
        assert!(!etag_matches(b"", e, true));
        assert!(!etag_matches(b"*,", e, true));
    }

    #[test]
    fn dates_in_three_formats() {
        for d in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(http_date(d.as_bytes()), Some(784_111_777), "{d}");
        }
        assert_eq!(http_date(b"yesterday"), None);
        assert_eq!(etag(0x5f, 26), r#""5f-1a""#);
    }

    #[test]
    fn accept_encoding_qualities() {
        let q = |ae: &str, c: &str| coding_quality(ae.as_bytes(), c.as_bytes());
        assert_eq!(q("gzip, br", "gzip"), 1000);
        assert_eq!(q("gzip;q=0.5, br;q=0.8", "br"), 800);
        assert_eq!(q("gzip;q=0", "gzip"), 0);
        assert_eq!(q("GZIP ; Q=0.001", "gzip"), 1);
        assert_eq!(q("x-gzip", "gzip"), 1000);
        assert_eq!(q("deflate", "gzip"), 0);
        assert_eq!(q("*", "br"), 1000);
        assert_eq!(q("*;q=0.2, gzip;q=0", "gzip"), 0);
        assert_eq!(q("*;q=0.2, gzip;q=0", "br"), 200);
        assert_eq!(q("gzip;q=2", "gzip"), 0);
        assert_eq!(q("gzip;q=0.0001", "gzip"), 0);
        assert_eq!(q("", "gzip"), 0);
    }
}
