//! Runs a parsed PowerShell script (see `ps_parse`): variables, `$ErrorActionPreference`,
//! try/catch, `exit`, pipelines, parameter binding by name, prefix and position, the built-in
//! `Select-Object` / `ConvertTo-Json` / `Write-Output`, and `[Console]::Error.WriteLine`. The
//! cmdlets themselves come from a [`Host`].

use std::collections::HashMap;

use super::ps_parse::{Arg, CommandCall, Expr, Head, Stmt};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Value>),
    Hash(Vec<(String, Value)>),
    /// An object with properties, in order (what the Get- cmdlets return).
    Obj(Vec<(String, Value)>),
    /// `$_` in a catch block: the error's message.
    Error(String),
    /// `[Console]::Error`.
    ErrorWriter,
}

impl Value {
    /// How PowerShell prints the value as text.
    pub fn text(&self) -> String {
        match self {
            Value::Null | Value::ErrorWriter => String::new(),
            Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Str(s) | Value::Error(s) => s.clone(),
            Value::Array(v) => v.iter().map(Value::text).collect::<Vec<_>>().join(" "),
            Value::Hash(_) => "System.Collections.Hashtable".to_string(),
            Value::Obj(_) => "System.Management.Automation.PSCustomObject".to_string(),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Str(s) => !s.is_empty(),
            Value::Array(v) => !v.is_empty(),
            _ => true,
        }
    }

    fn json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null | Value::ErrorWriter => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(n) => J::from(*n),
            Value::Str(s) | Value::Error(s) => J::String(s.clone()),
            Value::Array(v) => J::Array(v.iter().map(Value::json).collect()),
            Value::Hash(p) | Value::Obj(p) => {
                J::Object(p.iter().map(|(k, v)| (k.clone(), v.json())).collect())
            }
        }
    }
}

/// A cmdlet failure: its message, and whether it ends the statement whatever
/// `$ErrorActionPreference` says (binding errors, unknown commands) or is an ordinary error.
#[derive(Clone, Debug)]
pub struct Failure {
    pub message: String,
    pub terminating: bool,
}

impl Failure {
    pub fn error(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            terminating: false,
        }
    }
    pub fn terminating(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            terminating: true,
        }
    }
}

/// One parameter of a cmdlet.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub switch: bool,
    pub position: Option<usize>,
}

pub const fn value(name: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        switch: false,
        position: None,
    }
}
pub const fn switch(name: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        switch: true,
        position: None,
    }
}
pub const fn positional(name: &'static str, position: usize) -> ParamSpec {
    ParamSpec {
        name,
        switch: false,
        position: Some(position),
    }
}

/// The common parameters every cmdlet takes (the ones a script here would use).
const COMMON: [ParamSpec; 7] = [
    switch("Confirm"),
    switch("WhatIf"),
    switch("Verbose"),
    switch("Debug"),
    value("ErrorAction"),
    value("WarningAction"),
    value("InformationAction"),
];

/// The bound parameters of one call (names as the cmdlet spells them).
#[derive(Debug, Default)]
pub struct Bound(HashMap<&'static str, Value>);

impl Bound {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub fn switch(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(Value::truthy)
    }

    /// A string-typed parameter; `Ok(None)` when not given.
    pub fn string(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Null) => Err(Failure::terminating(format!(
                "Cannot bind argument to parameter '{name}' because it is null."
            ))),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(Value::Int(n)) => Ok(Some(n.to_string())),
            Some(Value::Array(_)) => Err(Failure::terminating(format!(
                "Cannot convert 'System.Object[]' to the type 'System.String' required by parameter '{name}'. Specified method is not supported."
            ))),
            Some(other) => Err(Failure::terminating(format!(
                "Cannot convert '{}' to the type 'System.String' required by parameter '{name}'.",
                other.text()
            ))),
        }
    }

    /// A required string-typed parameter.
    pub fn required(&self, name: &str) -> Result<String, Failure> {
        self.string(name)?.ok_or_else(|| {
            Failure::terminating(format!(
                "Cannot process command because of one or more missing mandatory parameters: {name}."
            ))
        })
    }
}

/// The cmdlets a script can call, beyond the built-ins.
pub trait Host {
    /// The parameters of `name` (matched ignoring case), or `None` when there is no such command.
    fn params(&self, name: &str) -> Option<(&'static str, &'static [ParamSpec])>;
    /// Runs a bound call; `name` is the cmdlet's own spelling.
    fn invoke(
        &mut self,
        name: &'static str,
        args: &Bound,
        input: Vec<Value>,
    ) -> Result<Vec<Value>, Failure>;
}

/// What a script did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

enum Stop {
    Exit(i32),
    /// A terminating error: the message, and the command that raised it (for the uncaught form).
    Error(String, String),
}

/// Runs `stmts` against `host`.
pub fn run(stmts: &[Stmt], host: &mut dyn Host) -> Outcome {
    let mut it = Interp {
        host,
        vars: HashMap::new(),
        out: Outcome::default(),
        last_failed: false,
    };
    match it.block(stmts) {
        Ok(()) => it.out.exit_code = i32::from(it.last_failed),
        Err(Stop::Exit(code)) => it.out.exit_code = code,
        Err(Stop::Error(msg, who)) => {
            it.out.stderr.push_str(&uncaught(&who, &msg));
            it.out.exit_code = 1;
        }
    }
    it.out
}

struct Interp<'h> {
    host: &'h mut dyn Host,
    vars: HashMap<String, Value>,
    out: Outcome,
    last_failed: bool,
}

const BUILTINS: [(&str, &[ParamSpec]); 4] = [
    (
        "Select-Object",
        &[
            positional("Property", 0),
            value("ExpandProperty"),
            value("First"),
        ],
    ),
    ("ConvertTo-Json", &[switch("Compress"), value("Depth")]),
    ("Write-Output", &[positional("InputObject", 0)]),
    ("ForEach-Object", &[positional("MemberName", 0)]),
];

impl Interp<'_> {
    fn stop_on_error(&self) -> bool {
        let pref = self
            .vars
            .get("erroractionpreference")
            .map(Value::text)
            .unwrap_or_default();
        pref.eq_ignore_ascii_case("Stop")
    }

    fn block(&mut self, stmts: &[Stmt]) -> Result<(), Stop> {
        for s in stmts {
            self.statement(s)?;
        }
        Ok(())
    }

    fn statement(&mut self, s: &Stmt) -> Result<(), Stop> {
        match s {
            Stmt::Assign { var, value } => {
                let v = self
                    .eval(value)
                    .map_err(|f| Stop::Error(f.message, String::new()))?;
                self.vars.insert(var.to_ascii_lowercase(), v);
                Ok(())
            }
            Stmt::Exit(e) => {
                let code = match e {
                    None => 0,
                    Some(e) => match self
                        .eval(e)
                        .map_err(|f| Stop::Error(f.message, String::new()))?
                    {
                        Value::Int(n) => n as i32,
                        other => other.text().trim().parse().unwrap_or(0),
                    },
                };
                Err(Stop::Exit(code))
            }
            Stmt::Try { body, catch } => match self.block(body) {
                Err(Stop::Error(msg, _)) => {
                    self.vars.insert("_".into(), Value::Error(msg));
                    self.block(catch)
                }
                other => other,
            },
            Stmt::Pipeline { head, rest } => match self.pipeline(head, rest) {
                Ok(values) => {
                    self.last_failed = false;
                    self.print(&values);
                    Ok(())
                }
                Err((who, f)) => {
                    self.last_failed = true;
                    // As in PowerShell, try/catch sees terminating errors only: an ordinary
                    // error is one when $ErrorActionPreference is Stop.
                    if f.terminating || self.stop_on_error() {
                        return Err(Stop::Error(f.message, who));
                    }
                    let text = uncaught(&who, &f.message);
                    self.out.stderr.push_str(&text);
                    Ok(())
                }
            },
        }
    }

    fn pipeline(
        &mut self,
        head: &Head,
        rest: &[CommandCall],
    ) -> Result<Vec<Value>, (String, Failure)> {
        let mut values = match head {
            Head::Expr(e) => self
                .eval(e)
                .map(|v| flatten(vec![v]))
                .map_err(|f| (String::new(), f))?,
            Head::Command(c) => self.command(c, Vec::new())?,
        };
        for c in rest {
            values = self.command(c, values)?;
        }
        Ok(values)
    }

    fn command(
        &mut self,
        call: &CommandCall,
        input: Vec<Value>,
    ) -> Result<Vec<Value>, (String, Failure)> {
        let who = call.name.clone();
        let builtin = BUILTINS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&call.name))
            .copied();
        let Some((name, specs)) = builtin.or_else(|| self.host.params(&call.name)) else {
            return Err((who, Failure::terminating(format!(
                "The term '{}' is not recognized as the name of a cmdlet, function, script file, or operable program. \
                 Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
                call.name
            ))));
        };
        let bound = self.bind(specs, &call.args).map_err(|f| (who.clone(), f))?;
        let res = match name {
            "Select-Object" => select_object(&bound, input),
            "ConvertTo-Json" => convert_to_json(&bound, input),
            "ForEach-Object" => for_each_member(&bound, input),
            "Write-Output" => Ok(flatten(vec![bound
                .get("InputObject")
                .cloned()
                .unwrap_or(Value::Null)])),
            _ => self.host.invoke(name, &bound, input),
        };
        res.map_err(|f| (who, f))
    }

    fn bind(&mut self, specs: &[ParamSpec], args: &[Arg]) -> Result<Bound, Failure> {
        let all: Vec<ParamSpec> = specs.iter().chain(COMMON.iter()).copied().collect();
        let mut bound = Bound::default();
        let mut positionals = Vec::new();
        let mut i = 0;
        while i < args.len() {
            match &args[i] {
                Arg::Value(e) => positionals.push(self.eval(e)?),
                Arg::Param { name, value } => {
                    let spec = find_param(&all, name)?;
                    if bound.0.contains_key(spec.name) {
                        return Err(Failure::terminating(format!(
                            "Cannot bind parameter because parameter '{}' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax.",
                            spec.name
                        )));
                    }
                    let v = match (value, spec.switch) {
                        (Some(e), _) => self.eval(e)?,
                        (None, true) => Value::Bool(true),
                        (None, false) => match args.get(i + 1) {
                            Some(Arg::Value(e)) => {
                                i += 1;
                                self.eval(e)?
                            }
                            _ => {
                                return Err(Failure::terminating(format!(
                                    "Missing an argument for parameter '{}'. Specify a parameter of type 'System.String' and try again.",
                                    spec.name
                                )))
                            }
                        },
                    };
                    bound.0.insert(spec.name, v);
                }
            }
            i += 1;
        }
        let mut slots: Vec<&ParamSpec> = all.iter().filter(|s| s.position.is_some()).collect();
        slots.sort_by_key(|s| s.position);
        slots.retain(|s| !bound.0.contains_key(s.name));
        let mut slots = slots.into_iter();
        for v in positionals {
            let Some(spec) = slots.next() else {
                return Err(Failure::terminating(format!(
                    "A positional parameter cannot be found that accepts argument '{}'.",
                    v.text()
                )));
            };
            bound.0.insert(spec.name, v);
        }
        Ok(bound)
    }

    fn eval(&mut self, e: &Expr) -> Result<Value, Failure> {
        Ok(match e {
            Expr::Str(s) | Expr::Bare(s) => Value::Str(s.clone()),
            Expr::Int(n) => Value::Int(*n),
            Expr::Var(name) => match name.to_ascii_lowercase().as_str() {
                "null" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => self.vars.get(other).cloned().unwrap_or(Value::Null),
            },
            Expr::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|e| self.eval(e))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Hash(pairs) => Value::Hash(
                pairs
                    .iter()
                    .map(|(k, e)| Ok((k.clone(), self.eval(e)?)))
                    .collect::<Result<_, Failure>>()?,
            ),
            Expr::Static { ty, member } => {
                let console =
                    ty.eq_ignore_ascii_case("Console") || ty.eq_ignore_ascii_case("System.Console");
                if !console {
                    return Err(Failure::terminating(format!("Unable to find type [{ty}].")));
                }
                if !member.eq_ignore_ascii_case("Error") {
                    return Err(Failure::terminating(format!(
                        "The simulator supports only [Console]::Error, not {member}."
                    )));
                }
                Value::ErrorWriter
            }
            Expr::Member { target, name } => match self.eval(target)? {
                Value::Obj(props) => property(&props, name).unwrap_or(Value::Null),
                Value::Error(msg) if name.eq_ignore_ascii_case("Message") => Value::Str(msg),
                _ => Value::Null,
            },
            Expr::Call { target, name, args } => {
                let t = self.eval(target)?;
                let args: Vec<Value> = args
                    .iter()
                    .map(|e| self.eval(e))
                    .collect::<Result<_, _>>()?;
                match (&t, name.to_ascii_lowercase().as_str()) {
                    (_, "tostring") if args.is_empty() => Value::Str(t.text()),
                    (Value::ErrorWriter, "writeline") => {
                        let line = args.iter().map(Value::text).collect::<String>();
                        self.out.stderr.push_str(&line);
                        self.out.stderr.push('\n');
                        Value::Null
                    }
                    (Value::ErrorWriter, "flush") => Value::Null,
                    _ => {
                        return Err(Failure::terminating(format!(
                            "Method invocation failed because [{}] does not contain a method named '{name}'.",
                            type_name(&t)
                        )))
                    }
                }
            }
        })
    }

    fn print(&mut self, values: &[Value]) {
        for v in values {
            match v {
                Value::Null | Value::ErrorWriter => {}
                Value::Obj(props) | Value::Hash(props) => {
                    for (k, v) in props {
                        self.out.stdout.push_str(&format!("{k} : {}\n", v.text()));
                    }
                    self.out.stdout.push('\n');
                }
                other => {
                    self.out.stdout.push_str(&other.text());
                    self.out.stdout.push('\n');
                }
            }
        }
    }
}

/// An error nobody caught, as the console host prints it: `Command : message`.
fn uncaught(who: &str, msg: &str) -> String {
    if who.is_empty() {
        format!("{msg}\n")
    } else {
        format!("{who} : {msg}\n")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "System.Boolean",
        Value::Int(_) => "System.Int32",
        Value::Str(_) => "System.String",
        Value::Array(_) => "System.Object[]",
        Value::Hash(_) => "System.Collections.Hashtable",
        Value::Obj(_) => "System.Management.Automation.PSCustomObject",
        Value::Error(_) => "System.Management.Automation.ErrorRecord",
        Value::ErrorWriter => "System.IO.TextWriter",
    }
}

fn find_param(all: &[ParamSpec], name: &str) -> Result<ParamSpec, Failure> {
    if let Some(s) = all.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
        return Ok(*s);
    }
    let lower = name.to_ascii_lowercase();
    let matches: Vec<&ParamSpec> = all
        .iter()
        .filter(|s| s.name.to_ascii_lowercase().starts_with(&lower))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => Err(Failure::terminating(format!(
            "A parameter cannot be found that matches parameter name '{name}'."
        ))),
        many => Err(Failure::terminating(format!(
            "Parameter cannot be processed because the parameter name '{name}' is ambiguous. Possible matches include: {}.",
            many.iter().map(|s| format!("-{}", s.name)).collect::<Vec<_>>().join(" ")
        ))),
    }
}

fn property(props: &[(String, Value)], name: &str) -> Option<Value> {
    props
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// Pipeline semantics: arrays are enumerated one level.
fn flatten(values: Vec<Value>) -> Vec<Value> {
    values
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            one => vec![one],
        })
        .collect()
}

fn select_object(b: &Bound, input: Vec<Value>) -> Result<Vec<Value>, Failure> {
    let first = match b.string("First")? {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            Failure::terminating(format!(
                "Cannot convert value \"{n}\" to type \"System.Int32\"."
            ))
        })?),
        None => None,
    };
    let mut out = Vec::new();
    for v in input.into_iter().take(first.unwrap_or(usize::MAX)) {
        if let Some(p) = b.string("ExpandProperty")? {
            let Value::Obj(props) = &v else {
                return Err(Failure::error(format!("Property \"{p}\" cannot be found.")));
            };
            match property(props, &p) {
                Some(x) => out.extend(flatten(vec![x])),
                None => return Err(Failure::error(format!("Property \"{p}\" cannot be found."))),
            }
        } else if let Some(names) = b.get("Property") {
            let names: Vec<String> = flatten(vec![names.clone()])
                .iter()
                .map(Value::text)
                .collect();
            let props = match &v {
                Value::Obj(p) => p.clone(),
                _ => Vec::new(),
            };
            out.push(Value::Obj(
                names
                    .iter()
                    .map(|n| (n.clone(), property(&props, n).unwrap_or(Value::Null)))
                    .collect(),
            ));
        } else {
            out.push(v);
        }
    }
    Ok(out)
}

/// `ForEach-Object MemberName` (PowerShell 3.0's simplified syntax): a property's value, or
/// `ToString` called; script blocks are not supported.
fn for_each_member(b: &Bound, input: Vec<Value>) -> Result<Vec<Value>, Failure> {
    let Some(member) = b.string("MemberName")? else {
        return Err(Failure::terminating(
            "ForEach-Object is supported only as ForEach-Object <MemberName>.",
        ));
    };
    let mut out = Vec::new();
    for v in input {
        if member.eq_ignore_ascii_case("ToString") {
            out.push(Value::Str(v.text()));
        } else if let Value::Obj(props) = &v {
            out.extend(flatten(vec![
                property(props, &member).unwrap_or(Value::Null)
            ]));
        }
    }
    Ok(out)
}

fn convert_to_json(b: &Bound, input: Vec<Value>) -> Result<Vec<Value>, Failure> {
    let j = match input.as_slice() {
        [] => return Ok(Vec::new()),
        [one] => one.json(),
        many => serde_json::Value::Array(many.iter().map(Value::json).collect()),
    };
    let text = if b.switch("Compress") {
        j.to_string()
    } else {
        serde_json::to_string_pretty(&j).unwrap_or_default()
    };
    Ok(vec![Value::Str(text)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::ps_parse::parse;

    /// A host with one cmdlet that echoes its bound parameters as an object.
    struct Echo;

    impl Host for Echo {
        fn params(&self, name: &str) -> Option<(&'static str, &'static [ParamSpec])> {
            const P: &[ParamSpec] = &[
                positional("Identity", 0),
                value("Items"),
                switch("Force"),
                value("Fail"),
            ];
            name.eq_ignore_ascii_case("Get-Echo")
                .then_some(("Get-Echo", P))
        }
        fn invoke(
            &mut self,
            _: &'static str,
            b: &Bound,
            _: Vec<Value>,
        ) -> Result<Vec<Value>, Failure> {
            if let Some(msg) = b.string("Fail")? {
                return Err(Failure::error(msg));
            }
            let items = b.get("Items").cloned().unwrap_or(Value::Null);
            Ok(vec![Value::Obj(vec![
                (
                    "Identity".into(),
                    Value::Str(b.string("Identity")?.unwrap_or_default()),
                ),
                ("Items".into(), items),
                ("Force".into(), Value::Bool(b.switch("Force"))),
            ])])
        }
    }

    fn run_text(text: &str) -> Outcome {
        run(&parse(text).unwrap(), &mut Echo)
    }

    #[test]
    fn scripts_and_their_outcomes() {
        // (script, stdout, stderr contains, exit code)
        let cases = [
            ("Get-Echo 'a' | Select-Object -ExpandProperty Identity", "a\n", "", 0),
            ("Get-Echo -Items 1,'b' | ForEach-Object Items | ForEach-Object ToString", "1\nb\n", "", 0),
            ("get-echo -Id 'x' -Items 'p','q' | Select-Object -Exp Items", "p\nq\n", "", 0),
            ("Get-Echo -Identity 'x' -Force:$false | ConvertTo-Json -Compress", "{\"Force\":false,\"Identity\":\"x\",\"Items\":null}\n", "", 0),
            ("Get-Echo -Items @{Add='z'} | Select-Object -ExpandProperty Items | ConvertTo-Json -Compress", "{\"Add\":\"z\"}\n", "", 0),
            ("Get-Nothing", "", "The term 'Get-Nothing' is not recognized as the name of a cmdlet", 1),
            ("Get-Echo -Bogus 1", "", "A parameter cannot be found that matches parameter name 'Bogus'.", 1),
            ("Get-Echo -F", "", "ambiguous", 1),
            ("Get-Echo -Items", "", "Missing an argument for parameter 'Items'", 1),
            ("Get-Echo 'a' 'b'", "", "A positional parameter cannot be found that accepts argument 'b'.", 1),
            ("Get-Echo -Fail 'boom'; 'after'", "after\n", "Get-Echo : boom", 0),
            ("$ErrorActionPreference = 'Stop'; Get-Echo -Fail 'boom'; 'after'", "", "boom", 1),
            ("$ErrorActionPreference = 'Stop'; try { Get-Echo -Fail 'boom' } catch { [Console]::Error.WriteLine($_.ToString()); exit 3 }", "", "boom\n", 3),
            ("$ErrorActionPreference = 'Stop'; try { Get-Echo -Fail 'boom'; 'not reached' } catch { 'caught' }", "caught\n", "", 0),
            ("try { Get-Echo -Fail 'boom'; 'reached' } catch { 'caught' }", "reached\n", "Get-Echo : boom", 0),
            ("try { Get-Echo -Bogus 1; 'not reached' } catch { 'caught' }", "caught\n", "", 0),
            ("Get-Echo -Fail 'x'", "", "Get-Echo : x", 1),
            ("exit", "", "", 0),
        ];
        for (text, stdout, stderr, code) in cases {
            let o = run_text(text);
            assert_eq!(o.stdout, stdout, "{text}");
            assert!(o.stderr.contains(stderr), "{text}: {:?}", o.stderr);
            if stderr.is_empty() {
                assert_eq!(o.stderr, "", "{text}");
            }
            assert_eq!(o.exit_code, code, "{text}");
        }
    }
}
