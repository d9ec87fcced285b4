//! A parser for the subset of PowerShell the chat runner generates (and a little more, so hand
//! written scripts and hostile values are read the way powershell.exe reads them).
//!
//! Supported: statements separated by `;` or newlines; `#` and `<# #>` comments; backtick line
//! continuation; `$var = expr`; `try { } catch { }`; `exit [n]`; pipelines of commands; command
//! arguments `-Name value`, `-Switch`, `-Switch:value`, positional values, `a,b` arrays; single
//! quoted strings (any of `'` U+2018 U+2019 U+201A U+201B opens or closes, a doubled one stands
//! for itself); double quoted strings with backtick escapes (`$` followed by a name, `{` or `(`
//! is REFUSED, since the simulator does not expand variables; a lone `$` is literal); `@(...)`,
//! `@{k=v; ...}`, `(expr)`, `$null`/`$true`/`$false`/`$_`, `[Type]::Member`, `.Member` and
//! `.Method(args)`; en and em dashes as parameter dashes. Anything else is a parse error.

use std::fmt;

use crate::chat::quote::{is_double_quote, is_single_quote};

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Assign {
        var: String,
        value: Expr,
    },
    Try {
        body: Vec<Stmt>,
        catch: Vec<Stmt>,
    },
    Exit(Option<Expr>),
    /// `head | cmd | cmd`; the head is a command or an expression.
    Pipeline {
        head: Head,
        rest: Vec<CommandCall>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Head {
    Expr(Expr),
    Command(CommandCall),
}

#[derive(Clone, Debug, PartialEq)]
pub struct CommandCall {
    pub name: String,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// `-Name`, or `-Name:value` when `value` is set.
    Param {
        name: String,
        value: Option<Expr>,
    },
    Value(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    /// A variable, without the `$` (`null`, `true`, `false` and `_` included).
    Var(String),
    /// An unquoted word in argument mode (`FailedOver`).
    Bare(String),
    Array(Vec<Expr>),
    Hash(Vec<(String, Expr)>),
    /// `[Console]::Error`.
    Static {
        ty: String,
        member: String,
    },
    Member {
        target: Box<Expr>,
        name: String,
    },
    Call {
        target: Box<Expr>,
        name: String,
        args: Vec<Expr>,
    },
}

/// Where and why a script could not be parsed (line and column count from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "At line:{} char:{}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole script.
pub fn parse(text: &str) -> Result<Vec<Stmt>, ParseError> {
    let mut p = Parser {
        s: text.chars().collect(),
        i: 0,
    };
    let stmts = p.statements(None)?;
    Ok(stmts)
}

fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Ends a bare word or a command name.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, ';' | '|' | '(' | ')' | '{' | '}' | ',' | '&' | '<' | '>')
}

struct Parser {
    s: Vec<char>,
    i: usize,
}

type R<T> = Result<T, ParseError>;

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    fn err<T>(&self, message: impl Into<String>) -> R<T> {
        let before = &self.s[..self.i.min(self.s.len())];
        let line = before.iter().filter(|&&c| c == '\n').count() + 1;
        let column = before.iter().rev().take_while(|&&c| c != '\n').count() + 1;
        Err(ParseError {
            line,
            column,
            message: message.into(),
        })
    }

    fn expect(&mut self, c: char) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(format!("Missing '{c}'"))
        }
    }

    /// Spaces, tabs, comments and backtick line continuations; newlines only when `newlines`.
    fn skip_ws(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            if c == '\n' && !newlines {
                break;
            } else if c.is_whitespace() {
                self.i += 1;
            } else if c == '`' && matches!(self.peek_at(1), Some('\n')) {
                self.i += 2;
            } else if c == '`' && self.peek_at(1) == Some('\r') && self.peek_at(2) == Some('\n') {
                self.i += 3;
            } else if c == '<' && self.peek_at(1) == Some('#') {
                self.i += 2;
                while self.peek().is_some()
                    && !(self.peek() == Some('#') && self.peek_at(1) == Some('>'))
                {
                    self.i += 1;
                }
                self.i = (self.i + 2).min(self.s.len());
            } else if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        let n = word.chars().count();
        let matches = self.s.len() >= self.i + n
            && self.s[self.i..self.i + n]
                .iter()
                .copied()
                .map(|c| c.to_ascii_lowercase())
                .eq(word.chars())
            && self.peek_at(n).is_none_or(is_delimiter);
        if matches {
            self.i += n;
        }
        matches
    }

    fn statements(&mut self, close: Option<char>) -> R<Vec<Stmt>> {
        let mut out = Vec::new();
        loop {
            self.skip_ws(true);
            while self.peek() == Some(';') {
                self.i += 1;
                self.skip_ws(true);
            }
            match self.peek() {
                None if close.is_some() => {
                    return self.err("Missing closing '}' in statement block")
                }
                None => return Ok(out),
                Some(c) if Some(c) == close => return Ok(out),
                _ => {}
            }
            out.push(self.statement()?);
            self.skip_ws(false);
            match self.peek() {
                None | Some('\n' | ';') => {}
                Some(c) if Some(c) == close => {}
                Some(c) => {
                    return self.err(format!("Unexpected token '{c}' in expression or statement"))
                }
            }
        }
    }

    fn block(&mut self) -> R<Vec<Stmt>> {
        self.skip_ws(true);
        self.expect('{')?;
        let body = self.statements(Some('}'))?;
        self.expect('}')?;
        Ok(body)
    }

    fn statement(&mut self) -> R<Stmt> {
        if self.keyword("try") {
            let body = self.block()?;
            self.skip_ws(true);
            if !self.keyword("catch") {
                return self.err("The Try statement is missing its Catch or Finally block");
            }
            let catch = self.block()?;
            return Ok(Stmt::Try { body, catch });
        }
        if self.keyword("exit") {
            self.skip_ws(false);
            return match self.peek() {
                None | Some('\n' | ';' | '}') => Ok(Stmt::Exit(None)),
                _ => Ok(Stmt::Exit(Some(self.expr(false)?))),
            };
        }
        let starts_expr = matches!(self.peek(), Some(c) if c == '$' || c == '[' || c == '(' || c == '@'
            || c.is_ascii_digit() || is_single_quote(c) || is_double_quote(c));
        let head = if starts_expr {
            let e = self.expr(false)?;
            self.skip_ws(false);
            if self.peek() == Some('=') && self.peek_at(1) != Some('=') {
                let Expr::Var(var) = e else {
                    return self.err("The assignment expression is not valid: only $variable = value is supported");
                };
                self.i += 1;
                self.skip_ws(false);
                let value = self.expr(false)?;
                return Ok(Stmt::Assign { var, value });
            }
            Head::Expr(e)
        } else {
            Head::Command(self.command()?)
        };
        let mut rest = Vec::new();
        loop {
            self.skip_ws(false);
            if self.peek() != Some('|') {
                break;
            }
            self.i += 1;
            self.skip_ws(true);
            rest.push(self.command()?);
        }
        Ok(Stmt::Pipeline { head, rest })
    }

    fn command(&mut self) -> R<CommandCall> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| !is_delimiter(c) && !is_single_quote(c) && !is_double_quote(c))
        {
            self.i += 1;
        }
        let name: String = self.s[start..self.i].iter().collect();
        if name.is_empty() || name.starts_with(is_dash) {
            return self.err("An empty pipe element or an expression where a command name was expected is not supported");
        }
        let mut args = Vec::new();
        loop {
            self.skip_ws(false);
            match self.peek() {
                None | Some('\n' | ';' | '|' | '}' | ')') => break,
                Some(c)
                    if is_dash(c)
                        && self
                            .peek_at(1)
                            .is_some_and(|d| d.is_alphabetic() || d == '_') =>
                {
                    self.i += 1;
                    let start = self.i;
                    while self.peek().is_some_and(is_name_char) {
                        self.i += 1;
                    }
                    let name: String = self.s[start..self.i].iter().collect();
                    let value = if self.peek() == Some(':') {
                        self.i += 1;
                        self.skip_ws(false);
                        Some(self.expr(true)?)
                    } else {
                        None
                    };
                    args.push(Arg::Param { name, value });
                }
                Some(_) => args.push(Arg::Value(self.expr(true)?)),
            }
        }
        Ok(CommandCall { name, args })
    }

    /// A primary with its member accesses, then `, more` as an array.
    fn expr(&mut self, arg_mode: bool) -> R<Expr> {
        let first = self.postfix(arg_mode)?;
        self.skip_ws(false);
        if self.peek() != Some(',') {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek() == Some(',') {
            self.i += 1;
            self.skip_ws(true);
            items.push(self.postfix(arg_mode)?);
            self.skip_ws(false);
        }
        Ok(Expr::Array(items))
    }

    fn postfix(&mut self, arg_mode: bool) -> R<Expr> {
        let mut e = self.primary(arg_mode)?;
        loop {
            let is_static = self.peek() == Some(':') && self.peek_at(1) == Some(':');
            let is_member = self.peek() == Some('.')
                && self
                    .peek_at(1)
                    .is_some_and(|c| c.is_alphabetic() || c == '_');
            if !is_static && !is_member {
                return Ok(e);
            }
            self.i += if is_static { 2 } else { 1 };
            let start = self.i;
            while self.peek().is_some_and(is_name_char) {
                self.i += 1;
            }
            let name: String = self.s[start..self.i].iter().collect();
            if is_static {
                let Expr::Static { ty, member } = &e else {
                    return self.err("'::' is only supported after a [Type]");
                };
                if !member.is_empty() {
                    return self.err("'::' is only supported once, after a [Type]");
                }
                e = Expr::Static {
                    ty: ty.clone(),
                    member: name,
                };
                continue;
            }
            if self.peek() == Some('(') {
                self.i += 1;
                self.skip_ws(true);
                let mut args = Vec::new();
                if self.peek() != Some(')') {
                    match self.expr(false)? {
                        Expr::Array(items) => args = items,
                        one => args.push(one),
                    }
                    self.skip_ws(true);
                }
                self.expect(')')?;
                e = Expr::Call {
                    target: Box::new(e),
                    name,
                    args,
                };
            } else {
                e = Expr::Member {
                    target: Box::new(e),
                    name,
                };
            }
        }
    }

    fn primary(&mut self, arg_mode: bool) -> R<Expr> {
        let Some(c) = self.peek() else {
            return self.err("Missing expression");
        };
        if is_single_quote(c) {
            return self.single_quoted().map(Expr::Str);
        }
        if is_double_quote(c) {
            return self.double_quoted().map(Expr::Str);
        }
        match c {
            '$' => {
                self.i += 1;
                if self.peek() == Some('{') {
                    self.i += 1;
                    let start = self.i;
                    while self.peek().is_some_and(|c| c != '}') {
                        self.i += 1;
                    }
                    let name: String = self.s[start..self.i].iter().collect();
                    self.expect('}')?;
                    return Ok(Expr::Var(name));
                }
                let start = self.i;
                while self.peek().is_some_and(|c| is_name_char(c) || c == '?') {
                    self.i += 1;
                }
                if self.i == start {
                    return self.err("'$' must be followed by a variable name");
                }
                Ok(Expr::Var(self.s[start..self.i].iter().collect()))
            }
            '@' if self.peek_at(1) == Some('(') => {
                self.i += 2;
                self.skip_ws(true);
                let mut items = Vec::new();
                while self.peek() != Some(')') {
                    match self.expr(false)? {
                        Expr::Array(more) => items.extend(more),
                        one => items.push(one),
                    }
                    self.skip_ws(true);
                    while self.peek() == Some(';') {
                        self.i += 1;
                        self.skip_ws(true);
                    }
                    if self.peek().is_none() {
                        return self.err("Missing closing ')' in subexpression");
                    }
                }
                self.i += 1;
                Ok(Expr::Array(items))
            }
            '@' if self.peek_at(1) == Some('{') => {
                self.i += 2;
                let mut pairs = Vec::new();
                loop {
                    self.skip_ws(true);
                    while self.peek() == Some(';') {
                        self.i += 1;
                        self.skip_ws(true);
                    }
                    match self.peek() {
                        Some('}') => break,
                        None => return self.err("Missing closing '}' in hash literal"),
                        _ => {}
                    }
                    let key = match self.peek() {
                        Some(q) if is_single_quote(q) => self.single_quoted()?,
                        Some(q) if is_double_quote(q) => self.double_quoted()?,
                        _ => {
                            let start = self.i;
                            while self.peek().is_some_and(is_name_char) {
                                self.i += 1;
                            }
                            if self.i == start {
                                return self.err("Missing key before '=' in hash literal");
                            }
                            self.s[start..self.i].iter().collect()
                        }
                    };
                    self.skip_ws(false);
                    self.expect('=')?;
                    self.skip_ws(true);
                    let value = self.expr(false)?;
                    pairs.push((key, value));
                }
                self.i += 1;
                Ok(Expr::Hash(pairs))
            }
            '(' => {
                self.i += 1;
                self.skip_ws(true);
                let e = self.expr(false)?;
                self.skip_ws(true);
                self.expect(')')?;
                Ok(e)
            }
            '[' => {
                self.i += 1;
                let start = self.i;
                while self.peek().is_some_and(|c| is_name_char(c) || c == '.') {
                    self.i += 1;
                }
                let ty: String = self.s[start..self.i].iter().collect();
                self.expect(']')?;
                if !(self.peek() == Some(':') && self.peek_at(1) == Some(':')) {
                    return self.err("type literals are only supported as [Type]::Member");
                }
                Ok(Expr::Static {
                    ty,
                    member: String::new(),
                })
            }
            c if c.is_ascii_digit() => {
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                let text: String = self.s[start..self.i].iter().collect();
                match text.parse() {
                    Ok(n) if self.peek().is_none_or(is_delimiter) || !arg_mode => Ok(Expr::Int(n)),
                    Ok(_) => self.bare(text),
                    Err(_) => self.err(format!("The number {text} is too large")),
                }
            }
            '{' => self.err("script blocks ({ ... }) are not supported by the simulator"),
            _ if arg_mode => self.bare(String::new()),
            c => self.err(format!("Unexpected token '{c}' in expression or statement")),
        }
    }

    /// A bare word in argument mode, starting with `prefix` (digits already read).
    fn bare(&mut self, prefix: String) -> R<Expr> {
        let mut word = prefix;
        while let Some(c) = self.peek() {
            if is_delimiter(c) {
                break;
            }
            if is_single_quote(c) || is_double_quote(c) || c == '$' || c == '`' {
                return self.err(format!("a bare word joined to a quoted or expanded part ({word}{c}...) is not supported"));
            }
            word.push(c);
            self.i += 1;
        }
        if word.is_empty() {
            return self.err("Missing argument");
        }
        Ok(Expr::Bare(word))
    }

    fn single_quoted(&mut self) -> R<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.err("The string is missing the terminator: '.");
            };
            self.i += 1;
            if is_single_quote(c) {
                match self.peek() {
                    Some(d) if is_single_quote(d) => {
                        out.push(d);
                        self.i += 1;
                    }
                    _ => return Ok(out),
                }
            } else {
                out.push(c);
            }
        }
    }

    fn double_quoted(&mut self) -> R<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.err("The string is missing the terminator: \".");
            };
            self.i += 1;
            if is_double_quote(c) {
                match self.peek() {
                    Some(d) if is_double_quote(d) => {
                        out.push(d);
                        self.i += 1;
                    }
                    _ => return Ok(out),
                }
            } else if c == '`' {
                let Some(e) = self.peek() else {
                    return self.err("The string is missing the terminator: \".");
                };
                self.i += 1;
                out.push(match e {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'e' => '\u{1b}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    other => other,
                });
            } else if c == '$'
                && self
                    .peek()
                    .is_some_and(|d| is_name_char(d) || matches!(d, '{' | '(' | '?' | ':'))
            {
                self.i -= 1;
                return self.err(
                    "variable expansion and subexpressions in double-quoted strings are not supported by the simulator",
                );
            } else {
                out.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Expr {
        Expr::Str(x.to_string())
    }

    fn one_command(text: &str) -> CommandCall {
        match parse(text).unwrap().as_slice() {
            [Stmt::Pipeline {
                head: Head::Command(c),
                rest,
            }] if rest.is_empty() => c.clone(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn strings() {
        let cases = [
            ("X 'it''s'", s("it's")),
            ("X '$a `b \"c\"'", s("$a `b \"c\"")),
            ("X \u{2018}a\u{2019}\u{2019}b\u{201B}", s("a\u{2019}b")),
            ("X 'a\u{2019}'b'", s("a'b")),
            ("X 'multi\nline'", s("multi\nline")),
            ("X \"a`tb`\"c\"\"d $ e\"", s("a\tb\"c\"d $ e")),
            ("X \u{201C}curly\u{201D}", s("curly")),
            ("X FailedOver", Expr::Bare("FailedOver".into())),
            ("X 42", Expr::Int(42)),
            ("X 'a','b'", Expr::Array(vec![s("a"), s("b")])),
            ("X @('a', 'b')", Expr::Array(vec![s("a"), s("b")])),
            ("X @()", Expr::Array(vec![])),
            ("X $null", Expr::Var("null".into())),
            ("X @{Add='x'}", Expr::Hash(vec![("Add".into(), s("x"))])),
            (
                "X @{ Remove = 'x','y' ; Add='z' }",
                Expr::Hash(vec![
                    ("Remove".into(), Expr::Array(vec![s("x"), s("y")])),
                    ("Add".into(), s("z")),
                ]),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(one_command(text).args, vec![Arg::Value(want)], "{text:?}");
        }
    }

    #[test]
    fn parameters() {
        let c = one_command(
            "Set-X -Identity 'service:p' –PoolState FailedOver -Confirm:$false -Force `\n -Y: 'v'",
        );
        assert_eq!(c.name, "Set-X");
        assert_eq!(
            c.args,
            vec![
                Arg::Param {
                    name: "Identity".into(),
                    value: None
                },
                Arg::Value(s("service:p")),
                Arg::Param {
                    name: "PoolState".into(),
                    value: None
                },
                Arg::Value(Expr::Bare("FailedOver".into())),
                Arg::Param {
                    name: "Confirm".into(),
                    value: Some(Expr::Var("false".into()))
                },
                Arg::Param {
                    name: "Force".into(),
                    value: None
                },
                Arg::Param {
                    name: "Y".into(),
                    value: Some(s("v"))
                },
            ]
        );
    }

    #[test]
    fn statements_and_blocks() {
        let text = "$ErrorActionPreference = 'Stop' # comment\n<# block\n comment #>try { Import-Module -Name 'Lync'; Get-X | Select-Object -ExpandProperty P }\ncatch { [Console]::Error.WriteLine($_.ToString()); exit 1 }";
        let stmts = parse(text).unwrap();
        assert_eq!(stmts.len(), 2);
        assert_eq!(
            stmts[0],
            Stmt::Assign {
                var: "ErrorActionPreference".into(),
                value: s("Stop")
            }
        );
        let Stmt::Try { body, catch } = &stmts[1] else {
            panic!("{stmts:?}")
        };
        assert_eq!(body.len(), 2);
        let Stmt::Pipeline { rest, .. } = &body[1] else {
            panic!()
        };
        assert_eq!(rest[0].name, "Select-Object");
        let write = Expr::Call {
            target: Box::new(Expr::Static {
                ty: "Console".into(),
                member: "Error".into(),
            }),
            name: "WriteLine".into(),
            args: vec![Expr::Call {
                target: Box::new(Expr::Var("_".into())),
                name: "ToString".into(),
                args: vec![],
            }],
        };
        assert_eq!(
            catch[0],
            Stmt::Pipeline {
                head: Head::Expr(write),
                rest: vec![]
            }
        );
        assert_eq!(catch[1], Stmt::Exit(Some(Expr::Int(1))));
    }

    #[test]
    fn refusals() {
        let cases = [
            ("X 'open", "missing the terminator: '"),
            ("X \"a $env:x\"", "not supported"),
            ("X \"$(Remove-Item C:\\)\"", "not supported"),
            ("try { X }", "Catch"),
            ("try { X ", "Missing closing"),
            ("X @('a'", "Missing"),
            ("X abc'def'", "not supported"),
            ("X | ForEach-Object { $_ }", "script blocks"),
            ("'a' = 1", "assignment"),
            ("X 'a' 'b' )", "Unexpected token ')'"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        // The classic injection stays one argument of one command.
        let c = one_command("Set-X -Identity 'service:x''; Remove-Item C:\\ -Recurse; '''");
        assert_eq!(
            c.args[1],
            Arg::Value(s("service:x'; Remove-Item C:\\ -Recurse; '"))
        );
    }
}
