//! The QPACK static table (RFC 9204 Appendix A): 99 fixed (name, value)
//! entries, indexed from 0. The only table this decoder resolves.

/// `(name, value)` by index, as in RFC 9204 Appendix A.
#[rustfmt::skip]
pub const STATIC_TABLE: [(&[u8], &[u8]); 99] = [
    /*  0 */ (b":authority", b""),
    /*  1 */ (b":path", b"/"),
    /*  2 */ (b"age", b"0"),
    /*  3 */ (b"content-disposition", b""),
    /*  4 */ (b"content-length", b"0"),
    /*  5 */ (b"cookie", b""),
    /*  6 */ (b"date", b""),
    /*  7 */ (b"etag", b""),
    /*  8 */ (b"if-modified-since", b""),
    /*  9 */ (b"if-none-match", b""),
    /* 10 */ (b"last-modified", b""),
    /* 11 */ (b"link", b""),
    /* 12 */ (b"location", b""),
    /* 13 */ (b"referer", b""),
    /* 14 */ (b"set-cookie", b""),
    /* 15 */ (b":method", b"CONNECT"),
    /* 16 */ (b":method", b"DELETE"),
    /* 17 */ (b":method", b"GET"),
    /* 18 */ (b":method", b"HEAD"),
    /* 19 */ (b":method", b"OPTIONS"),
    /* 20 */ (b":method", b"POST"),
    /* 21 */ (b":method", b"PUT"),
    /* 22 */ (b":scheme", b"http"),
    /* 23 */ (b":scheme", b"https"),
    /* 24 */ (b":status", b"103"),
    /* 25 */ (b":status", b"200"),
    /* 26 */ (b":status", b"304"),
    /* 27 */ (b":status", b"404"),
    /* 28 */ (b":status", b"503"),
    /* 29 */ (b"accept", b"*/*"),
    /* 30 */ (b"accept", b"application/dns-message"),
    /* 31 */ (b"accept-encoding", b"gzip, deflate, br"),
    /* 32 */ (b"accept-ranges", b"bytes"),
    /* 33 */ (b"access-control-allow-headers", b"cache-control"),
    /* 34 */ (b"access-control-allow-headers", b"content-type"),
    /* 35 */ (b"access-control-allow-origin", b"*"),
    /* 36 */ (b"cache-control", b"max-age=0"),
    /* 37 */ (b"cache-control", b"max-age=2592000"),
    /* 38 */ (b"cache-control", b"max-age=604800"),
    /* 39 */ (b"cache-control", b"no-cache"),
    /* 40 */ (b"cache-control", b"no-store"),
    /* 41 */ (b"cache-control", b"public, max-age=31536000"),
    /* 42 */ (b"content-encoding", b"br"),
    /* 43 */ (b"content-encoding", b"gzip"),
    /* 44 */ (b"content-type", b"application/dns-message"),
    /* 45 */ (b"content-type", b"application/javascript"),
    /* 46 */ (b"content-type", b"application/json"),
    /* 47 */ (b"content-type", b"application/x-www-form-urlencoded"),
    /* 48 */ (b"content-type", b"image/gif"),
    /* 49 */ (b"content-type", b"image/jpeg"),
    /* 50 */ (b"content-type", b"image/png"),
    /* 51 */ (b"content-type", b"text/css"),
    /* 52 */ (b"content-type", b"text/html; charset=utf-8"),
    /* 53 */ (b"content-type", b"text/plain"),
    /* 54 */ (b"content-type", b"text/plain;charset=utf-8"),
    /* 55 */ (b"range", b"bytes=0-"),
    /* 56 */ (b"strict-transport-security", b"max-age=31536000"),
    /* 57 */ (b"strict-transport-security", b"max-age=31536000; includesubdomains"),
    /* 58 */ (b"strict-transport-security", b"max-age=31536000; includesubdomains; preload"),
    /* 59 */ (b"vary", b"accept-encoding"),
    /* 60 */ (b"vary", b"origin"),
    /* 61 */ (b"x-content-type-options", b"nosniff"),
    /* 62 */ (b"x-xss-protection", b"1; mode=block"),
    /* 63 */ (b":status", b"100"),
    /* 64 */ (b":status", b"204"),
    /* 65 */ (b":status", b"206"),
    /* 66 */ (b":status", b"302"),
    /* 67 */ (b":status", b"400"),
    /* 68 */ (b":status", b"403"),
    /* 69 */ (b":status", b"421"),
    /* 70 */ (b":status", b"425"),
    /* 71 */ (b":status", b"500"),
    /* 72 */ (b"accept-language", b""),
    /* 73 */ (b"access-control-allow-credentials", b"FALSE"),
    /* 74 */ (b"access-control-allow-credentials", b"TRUE"),
    /* 75 */ (b"access-control-allow-headers", b"*"),
    /* 76 */ (b"access-control-allow-methods", b"get"),
    /* 77 */ (b"access-control-allow-methods", b"get, post, options"),
    /* 78 */ (b"access-control-allow-methods", b"options"),
    /* 79 */ (b"access-control-expose-headers", b"content-length"),
    /* 80 */ (b"access-control-request-headers", b"content-type"),
    /* 81 */ (b"access-control-request-method", b"get"),
    /* 82 */ (b"access-control-request-method", b"post"),
    /* 83 */ (b"alt-svc", b"clear"),
    /* 84 */ (b"authorization", b""),
    /* 85 */ (b"content-security-policy", b"script-src 'none'; object-src 'none'; base-uri 'none'"),
    /* 86 */ (b"early-data", b"1"),
    /* 87 */ (b"expect-ct", b""),
    /* 88 */ (b"forwarded", b""),
    /* 89 */ (b"if-range", b""),
    /* 90 */ (b"origin", b""),
    /* 91 */ (b"purpose", b"prefetch"),
    /* 92 */ (b"server", b""),
    /* 93 */ (b"timing-allow-origin", b"*"),
    /* 94 */ (b"upgrade-insecure-requests", b"1"),
    /* 95 */ (b"user-agent", b""),
    /* 96 */ (b"x-forwarded-for", b""),
    /* 97 */ (b"x-frame-options", b"deny"),
    /* 98 */ (b"x-frame-options", b"sameorigin"),
];

/// The entry at `index`, if the table has one.
pub fn get(index: u64) -> Option<(&'static [u8], &'static [u8])> {
    let index = usize::try_from(index).ok()?;
    STATIC_TABLE.get(index).copied()
}

/// How an encoder can refer to a field through the static table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticMatch {
    /// An entry with this name and value.
    Exact(u8),
    /// An entry with this name (the first one), another value.
    Name(u8),
    /// No entry has this name.
    None,
}

/// Finds the best static reference for a field.
pub fn lookup(name: &[u8], value: &[u8]) -> StaticMatch {
    let mut found = StaticMatch::None;
    for (index, &(entry_name, entry_value)) in STATIC_TABLE.iter().enumerate() {
        if entry_name != name {
            continue;
        }
        if entry_value == value {
            return StaticMatch::Exact(index as u8);
        }
        if found == StaticMatch::None {
            found = StaticMatch::Name(index as u8);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_checks_against_rfc9204_appendix_a() {
        let cases: &[(u64, &str, &str)] = &[
            (0, ":authority", ""),
            (1, ":path", "/"),
            (2, "age", "0"),
            (15, ":method", "CONNECT"),
            (17, ":method", "GET"),
            (23, ":scheme", "https"),
            (25, ":status", "200"),
            (29, "accept", "*/*"),
            (52, "content-type", "text/html; charset=utf-8"),
            (63, ":status", "100"),
            (72, "accept-language", ""),
            (
                85,
                "content-security-policy",
                "script-src 'none'; object-src 'none'; base-uri 'none'",
            ),
            (90, "origin", ""),
            (95, "user-agent", ""),
            (98, "x-frame-options", "sameorigin"),
        ];
        for &(index, name, value) in cases {
            assert_eq!(get(index), Some((name.as_bytes(), value.as_bytes())), "index {index}");
        }
        assert_eq!(get(99), None);
        assert_eq!(get(u64::MAX), None);
    }

    #[test]
    fn names_are_lowercase_tokens() {
        for (name, _) in STATIC_TABLE {
            let name = name.strip_prefix(b":").unwrap_or(name);
            assert!(name.iter().all(|&byte| byte.is_ascii_lowercase() || byte == b'-'));
        }
    }

    #[test]
    fn lookup_prefers_exact_then_first_name() {
        assert_eq!(lookup(b":method", b"CONNECT"), StaticMatch::Exact(15));
        assert_eq!(lookup(b":status", b"200"), StaticMatch::Exact(25));
        assert_eq!(lookup(b":status", b"418"), StaticMatch::Name(24));
        assert_eq!(lookup(b":authority", b"example.com"), StaticMatch::Name(0));
        assert_eq!(lookup(b":protocol", b"webtransport"), StaticMatch::None);
    }
}
