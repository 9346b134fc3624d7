//! Go's `time.ParseDuration`, which the server applies to duration settings
//! (`hb_interval`, `slice_max_age`, `file_auto_sync`, ...): same grammar,
//! same results, same error texts, so a value the server rejects is rejected
//! here with the server's reason.

/// Nanoseconds per unit, as Go spells the units.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{00B5}s" | "\u{03BC}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Go's `strconv.Quote`-like quoting used in the messages.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// Parses a Go duration string (`"1h30m"`, `"-1.5s"`, `"0"`) into
/// nanoseconds, or returns the error text Go's `time.ParseDuration` gives.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next() {
        if c == '-' || c == '+' {
            neg = c == '-';
            s = &s[1..];
        }
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut v: u64 = 0;
        for d in s[..int_len].bytes() {
            if v > (1 << 63) / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(d - b'0');
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        let pre = int_len > 0;
        s = &s[int_len..];
        // Fraction part: digits past what fits are consumed and ignored.
        let mut f: u64 = 0;
        let mut scale = 1.0f64;
        let mut post = false;
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for d in rest[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                if f > (1 << 63) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(d - b'0');
                if y > 1 << 63 {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = frac_len > 0;
            s = &rest[frac_len..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit: up to the next digit or dot.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let Some(per) = unit_nanos(unit) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                quote(unit),
                quote(orig)
            ));
        };
        if v > (1 << 63) / per {
            return Err(invalid());
        }
        v *= per;
        if f > 0 {
            // Go converts through float64 here, and so do we.
            v = v.saturating_add((f as f64 * (per as f64 / scale)) as u64);
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        total = total.saturating_add(v);
        if total > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration as p;

    #[test]
    fn accepts_what_go_accepts() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("-0"), Ok(0));
        assert_eq!(p("1s"), Ok(1_000_000_000));
        assert_eq!(p("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(p("1.5s"), Ok(1_500_000_000));
        assert_eq!(p(".5ms"), Ok(500_000));
        assert_eq!(p("-2m"), Ok(-120_000_000_000));
        assert_eq!(p("+3us"), Ok(3_000));
        assert_eq!(p("3µs"), Ok(3_000));
        assert_eq!(p("1ns1s"), Ok(1_000_000_001));
    }

    #[test]
    fn rejects_with_go_messages() {
        assert_eq!(p(""), Err("time: invalid duration \"\"".to_string()));
        assert_eq!(p("abc"), Err("time: invalid duration \"abc\"".to_string()));
        assert_eq!(
            p("1"),
            Err("time: missing unit in duration \"1\"".to_string())
        );
        assert_eq!(
            p("1x"),
            Err("time: unknown unit \"x\" in duration \"1x\"".to_string())
        );
        assert_eq!(p("."), Err("time: invalid duration \".\"".to_string()));
        assert!(p("9999999999999999999h").is_err());
        assert!(p("3000000h").is_err());
    }
}
