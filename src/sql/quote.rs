//! The one quoting function family for T-SQL: identifiers and Unicode string literals.
//!
//! The engine sends names and paths as parameters; these forms are for statements that cannot
//! take parameters and for printing statements (`--what-if`, journals) an operator can paste.

/// `[name]`, with every `]` doubled, as QUOTENAME does.
pub fn quote_ident(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// `N'text'`, with every `'` doubled.
pub fn quote_nstring(s: &str) -> String {
    format!("N'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        let cases = [
            ("mgc", "[mgc]"),
            ("mg]c'", "[mg]]c']"),
            ("a]]b", "[a]]]]b]"),
            ("x; DROP DATABASE y;--", "[x; DROP DATABASE y;--]"),
            ("données", "[données]"),
            ("", "[]"),
        ];
        for (input, want) in cases {
            assert_eq!(quote_ident(input), want, "{input:?}");
        }
    }

    #[test]
    fn strings() {
        let cases = [
            (r"D:\LSCopy\mgc\mgc_1.trn", r"N'D:\LSCopy\mgc\mgc_1.trn'"),
            ("it's", "N'it''s'"),
            ("'; SHUTDOWN;--", "N'''; SHUTDOWN;--'"),
            (r"\\srv\share\ü ß 日本", r"N'\\srv\share\ü ß 日本'"),
            ("]", "N']'"),
        ];
        for (input, want) in cases {
            assert_eq!(quote_nstring(input), want, "{input:?}");
        }
    }
}
