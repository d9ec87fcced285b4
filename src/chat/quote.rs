//! PowerShell literal quoting, validation of the values that reach a script, and `-EncodedCommand`.
//!
//! Two layers: validation refuses values that cannot be right for their setting (an FQDN with a
//! space, a share that is not a UNC path) before any script is built, naming the setting; quoting
//! makes whatever does get through inert data, never code.

use crate::config::ConfigError;

/// The characters PowerShell's tokenizer treats as a single quote: `'` and the curly ones
/// (U+2018, U+2019, U+201A, U+201B). Any of them opens or closes a single-quoted string.
pub const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// The characters PowerShell's tokenizer treats as a double quote (U+201C, U+201D, U+201E too).
pub const DOUBLE_QUOTES: [char; 4] = ['"', '\u{201C}', '\u{201D}', '\u{201E}'];

pub fn is_single_quote(c: char) -> bool {
    SINGLE_QUOTES.contains(&c)
}

pub fn is_double_quote(c: char) -> bool {
    DOUBLE_QUOTES.contains(&c)
}

/// A PowerShell single-quoted string literal whose value is exactly `s`.
///
/// Inside single quotes PowerShell expands nothing (`$`, backticks and double quotes are plain
/// characters); the only special characters are the single quotes, and a doubled one stands for
/// itself. So every quote character is doubled as itself, as PowerShell's own
/// `CodeGeneration.EscapeSingleQuotedStringContent` does.
pub fn ps_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if is_single_quote(c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `@('a','b')`: a PowerShell array of single-quoted strings.
pub fn ps_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| ps_quote(s)).collect();
    format!("@({})", quoted.join(","))
}

/// A fully qualified host name: dot-separated labels of letters, digits and inner hyphens.
pub fn validate_fqdn(setting: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::invalid(setting, "must not be empty"));
    }
    if value.len() > 253 {
        return Err(ConfigError::invalid(
            setting,
            format!("{value:?} is longer than 253 characters"),
        ));
    }
    for label in value.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(ConfigError::invalid(
                setting,
                format!(
                    "{value:?} is not a host name: expected labels of letters, digits and hyphens \
                     separated by dots, e.g. atl-cs-001.litwareinc.com"
                ),
            ));
        }
    }
    Ok(())
}

/// A SQL Server instance name: 1 to 16 letters, digits, `_`, `$` or `#`, starting with a letter or `_`.
pub fn validate_instance(setting: &str, value: &str) -> Result<(), ConfigError> {
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '#'));
    if !first_ok || !rest_ok || value.len() > 16 {
        return Err(ConfigError::invalid(
            setting,
            format!("{value:?} is not a SQL Server instance name (1-16 letters, digits, _ $ #)"),
        ));
    }
    Ok(())
}

/// A UNC path `\\server\share[\...]`. Spaces, `$`, apostrophes and non-ASCII letters are legal in
/// share and folder names and are kept (quoting carries them); control characters and the
/// characters Windows forbids in paths are refused.
pub fn validate_unc(setting: &str, value: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError::invalid(setting, format!("{value:?} {why}"));
    let Some(rest) = value.strip_prefix("\\\\") else {
        return Err(bad("is not a UNC path (expected \\\\server\\share)"));
    };
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '<' | '>' | '|' | '?' | '*' | '/'))
    {
        return Err(bad(&format!(
            "contains {c:?}, which a Windows path cannot hold"
        )));
    }
    let mut parts = rest.split('\\');
    let server = parts.next().unwrap_or("");
    let share = parts.next().unwrap_or("");
    if server.is_empty() || share.trim().is_empty() {
        return Err(bad("is not a UNC path (expected \\\\server\\share)"));
    }
    if let Err(e) = validate_fqdn(setting, server) {
        // A NetBIOS name is a one-label host name, which validate_fqdn accepts; anything else is not a server.
        return Err(bad(&format!("names no valid server ({e})")));
    }
    Ok(())
}

/// A PowerShell module name or path to import (`Lync`, `SkypeForBusiness`).
pub fn validate_module(setting: &str, value: &str) -> Result<(), ConfigError> {
    // Double quotes are refused so no value needs Windows command-line escaping.
    if value.trim().is_empty() || value.chars().any(|c| c.is_control() || is_double_quote(c)) {
        return Err(ConfigError::invalid(
            setting,
            format!("{value:?} is not a module name"),
        ));
    }
    Ok(())
}

/// The active servers: at least one, each a host name, no duplicates (host names ignore case).
pub fn validate_servers(setting: &str, servers: &[String]) -> Result<(), ConfigError> {
    if servers.is_empty() {
        return Err(ConfigError::invalid(
            setting,
            "must list at least one server",
        ));
    }
    for (i, s) in servers.iter().enumerate() {
        validate_fqdn(&format!("{setting}[{i}]"), s)?;
        if servers[..i].iter().any(|t| t.eq_ignore_ascii_case(s)) {
            return Err(ConfigError::invalid(
                setting,
                format!("{s:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional, whitespace ignored); `None` when malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let body = digits
        .strip_suffix(b"==")
        .or_else(|| digits.strip_suffix(b"="))
        .unwrap_or(&digits);
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = B64.iter().position(|&d| d == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

/// What `powershell.exe -EncodedCommand` takes: base64 of the script in UTF-16LE.
pub fn encode_command(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64_encode(&bytes)
}

/// The inverse of [`encode_command`]; `None` when it is not base64 of UTF-16LE.
pub fn decode_command(b64: &str) -> Option<String> {
    let bytes = base64_decode(b64)?;
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_table() {
        let cases = [
            ("", "''"),
            ("plain", "'plain'"),
            ("it's", "'it''s'"),
            ("''", "''''''"),
            ("$env:PATH", "'$env:PATH'"),
            ("$(Remove-Item C:\\)", "'$(Remove-Item C:\\)'"),
            ("a`b`'", "'a`b`'''"),
            ("say \"hi\"", "'say \"hi\"'"),
            ("with spaces  ", "'with spaces  '"),
            (
                "x'; Remove-Item C:\\ -Recurse; '",
                "'x''; Remove-Item C:\\ -Recurse; '''",
            ),
            ("line1\nline2\r\n", "'line1\nline2\r\n'"),
            ("O\u{2019}Brien", "'O\u{2019}\u{2019}Brien'"),
            (
                "\u{2018}\u{201A}\u{201B}",
                "'\u{2018}\u{2018}\u{201A}\u{201A}\u{201B}\u{201B}'",
            ),
            (
                "\u{201C}curly double\u{201D}",
                "'\u{201C}curly double\u{201D}'",
            ),
            ("Zürich-Ω-日本", "'Zürich-Ω-日本'"),
            ("\\\\fs\\D$\\share", "'\\\\fs\\D$\\share'"),
        ];
        for (input, want) in cases {
            assert_eq!(ps_quote(input), want, "{input:?}");
        }
        assert_eq!(ps_array(&["a".into(), "b'c".into()]), "@('a','b''c')");
    }

    #[test]
    fn fqdn_validation() {
        for ok in ["atl-cs-001.litwareinc.com", "localhost", "a.b", "x1"] {
            validate_fqdn("chat.pool_fqdn", ok).unwrap();
        }
        for bad in [
            "",
            "has space.com",
            "x'; Remove-Item C:\\ -Recurse; '",
            "a..b",
            "-a.b",
            "a-.b",
            "a.b.",
            "é.com",
            "a$b",
        ] {
            let err = validate_fqdn("chat.pool_fqdn", bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("chat.pool_fqdn"), "{bad:?}: {err}");
        }
        assert!(validate_fqdn("x", &"a".repeat(64)).is_err());
    }

    #[test]
    fn other_validation() {
        validate_instance("i", "PCHAT").unwrap();
        validate_instance("i", "P$C_H#1").unwrap();
        for bad in ["", "1abc", "has space", "a'b", "seventeen_chars_x"] {
            assert!(validate_instance("i", bad).is_err(), "{bad:?}");
        }
        for ok in [
            "\\\\atl-fs-01\\mirror",
            "\\\\fs\\D$\\O'Brien's share\\x",
            "\\\\fs\\Zürich ‘q’ `$x",
        ] {
            validate_unc("chat.mirror.file_share", ok).unwrap();
        }
        for bad in [
            "",
            "C:\\mirror",
            "\\\\",
            "\\\\srv",
            "\\\\srv\\",
            "\\\\srv\\a\"b",
            "\\\\srv\\a\nb",
            "\\\\bad name\\s",
        ] {
            let err = validate_unc("chat.mirror.file_share", bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("chat.mirror.file_share"), "{bad:?}: {err}");
        }
        assert!(validate_servers("chat.active_servers", &[])
            .unwrap_err()
            .to_string()
            .contains("at least one"));
        assert!(validate_servers("s", &["a.b".into(), "A.B".into()]).is_err());
        let err =
            validate_servers("chat.active_servers", &["ok.x".into(), "bad x".into()]).unwrap_err();
        assert!(err.to_string().contains("chat.active_servers[1]"), "{err}");
    }

    #[test]
    fn base64_round_trip() {
        let cases: [(&[u8], &str); 5] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, enc) in cases {
            assert_eq!(base64_encode(raw), enc);
            assert_eq!(base64_decode(enc).unwrap(), raw);
        }
        assert_eq!(base64_decode("Zg"), Some(b"f".to_vec()));
        assert_eq!(base64_decode("Z!=="), None);
        assert_eq!(base64_decode("Z"), None);
        // "dir" in UTF-16LE is 64 00 69 00 72 00.
        assert_eq!(encode_command("dir"), "ZABpAHIA");
        let s = "x'; ‘$y’ 日本 \u{1F600}";
        assert_eq!(decode_command(&encode_command(s)).unwrap(), s);
    }
}
