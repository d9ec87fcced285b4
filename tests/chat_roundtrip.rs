//! Every script the chat runner generates parses back, with PowerShell's quoting rules, to
//! exactly the values it was built from, and runs in the simulated shell with those values as
//! data: proptest over hostile strings (all of PowerShell's quote characters, `$`, backticks,
//! separators, newlines, non-ASCII).

use logship::chat::{MirrorSpec, PoolState, Scripts};
use logship::sim::chat_shell::{self, ChatShellState};
use logship::sim::ps_parse::{parse, Arg, CommandCall, Expr, Head, Stmt};
use proptest::prelude::*;

/// The cmdlet call inside the runner's `try { Import-Module ...; <call> } catch { ... }`.
fn the_call(text: &str, cmdlet: &str) -> CommandCall {
    let stmts = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let Some(Stmt::Try { body, .. }) = stmts.iter().find(|s| matches!(s, Stmt::Try { .. })) else {
        panic!("no try block: {text}");
    };
    assert_eq!(body.len(), 2, "{text}");
    match &body[1] {
        Stmt::Pipeline {
            head: Head::Command(c),
            ..
        } if c.name == cmdlet => c.clone(),
        other => panic!("expected {cmdlet}, got {other:?}"),
    }
}

/// The value given to `-name` (the argument after it).
fn arg(call: &CommandCall, name: &str) -> Expr {
    let i = call
        .args
        .iter()
        .position(|a| matches!(a, Arg::Param { name: n, .. } if n == name));
    let i = i.unwrap_or_else(|| panic!("no -{name} in {call:?}"));
    match &call.args[i + 1] {
        Arg::Value(e) => e.clone(),
        other => panic!("-{name} is followed by {other:?}"),
    }
}

fn s(x: &str) -> Expr {
    Expr::Str(x.to_string())
}

fn hostile() -> impl Strategy<Value = String> {
    let alphabet = vec![
        '\'',
        '\u{2018}',
        '\u{2019}',
        '\u{201A}',
        '\u{201B}',
        '"',
        '\u{201C}',
        '\u{201D}',
        '\u{201E}',
        '$',
        '`',
        '(',
        ')',
        '{',
        '}',
        '[',
        ']',
        ';',
        '|',
        '&',
        ' ',
        '\n',
        '\r',
        '\t',
        '#',
        '<',
        '>',
        '@',
        ',',
        '-',
        '\u{2013}',
        '\u{2014}',
        '=',
        ':',
        '.',
        '\\',
        'a',
        'Z',
        '0',
        '\u{e9}',
        '\u{65e5}',
        '\u{1F600}',
        '\0',
    ];
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(alphabet), 0..24).prop_map(|v| v.into_iter().collect()),
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scripts_parse_back_to_their_values(
        module in hostile(), pool in hostile(), a in hostile(), b in hostile(),
        sql in hostile(), inst in hostile(), share in hostile(), drop in any::<bool>(),
    ) {
        let scripts = Scripts::new(&module, &pool);
        let identity = format!("service:{pool}");
        for (script, cmdlet) in [
            (scripts.set_pool_state(PoolState::FailedOver), "Set-CsPersistentChatState"),
            (scripts.get_pool_state(), "Get-CsPersistentChatState"),
            (scripts.get_active_servers(), "Get-CsPersistentChatActiveServer"),
        ] {
            let call = the_call(&script.text, cmdlet);
            prop_assert_eq!(arg(&call, "Identity"), s(&identity));
        }
        let set = the_call(&scripts.set_pool_state(PoolState::FailedOver).text, "Set-CsPersistentChatState");
        prop_assert_eq!(arg(&set, "PoolState"), Expr::Bare("FailedOver".into()));
        let confirm_false = Arg::Param { name: "Confirm".into(), value: Some(Expr::Var("false".into())) };
        prop_assert!(set.args.contains(&confirm_false), "no -Confirm:$false");

        let stmts = parse(&scripts.get_pool_state().text).unwrap();
        let Stmt::Try { body, .. } = &stmts[2] else { panic!() };
        let Stmt::Pipeline { head: Head::Command(import), .. } = &body[0] else { panic!() };
        prop_assert_eq!(arg(import, "Name"), s(&module));

        let call = the_call(&scripts.get_mirror_state().text, "Get-CsDatabaseMirrorState");
        prop_assert_eq!(arg(&call, "PoolFqdn"), s(&pool));

        let servers = vec![a.clone(), b.clone()];
        let call = the_call(&scripts.set_active_servers(&servers).text, "Set-CsPersistentChatActiveServer");
        prop_assert_eq!(arg(&call, "ActiveServers"), Expr::Array(vec![s(&a), s(&b)]));

        let m = MirrorSpec {
            sql_server_fqdn: sql.clone(),
            sql_instance_name: Some(inst.clone()),
            file_share: share.clone(),
            drop_existing_databases_on_mirror: drop,
        };
        let call = the_call(&scripts.install_mirror(&m).text, "Install-CsMirrorDatabase");
        prop_assert_eq!(arg(&call, "SqlServerFqdn"), s(&sql));
        prop_assert_eq!(arg(&call, "SqlInstanceName"), s(&inst));
        prop_assert_eq!(arg(&call, "FileShare"), s(&share));
        let dropped = call.args.iter().any(|x| matches!(x, Arg::Param { name, .. } if name == "DropExistingDatabasesOnMirror"));
        prop_assert_eq!(dropped, drop);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Run in the simulated shell, the values land in its state exactly, and nothing else runs.
    #[test]
    fn scripts_run_with_their_values_as_data(pool in hostile(), a in hostile(), b in hostile(), share in hostile()) {
        prop_assume!(!a.eq_ignore_ascii_case(&b));
        let dir = tempfile::tempdir().unwrap();
        let servers = vec![a.clone(), b.clone()];
        chat_shell::init(dir.path(), &ChatShellState::new_pool(&pool, &servers, &[]), false).unwrap();
        let scripts = Scripts::new("Lync", &pool);
        let share = format!("\\\\fs\\{share}x");
        let m = MirrorSpec {
            sql_server_fqdn: "sql.x".into(),
            sql_instance_name: None,
            file_share: share.clone(),
            drop_existing_databases_on_mirror: false,
        };
        for script in [scripts.set_pool_state(PoolState::FailedOver), scripts.install_mirror(&m), scripts.set_active_servers(&servers)] {
            let out = chat_shell::run_script(dir.path(), &script.text);
            prop_assert_eq!(out.exit_code, 0, "{}: {}", script.text, out.stderr);
            prop_assert_eq!(out.stderr, "");
        }
        let out = chat_shell::run_script(dir.path(), &scripts.get_pool_state().text);
        prop_assert_eq!(out.stdout, "FailedOver\n");
        let st = ChatShellState::load(dir.path()).unwrap();
        prop_assert_eq!(&st.pools[0].fqdn, &pool);
        prop_assert_eq!(st.pools[0].state, PoolState::FailedOver);
        prop_assert_eq!(&st.pools[0].active_servers, &servers);
        prop_assert_eq!(&st.mirrors["PersistentChat"].file_share, &share);
        prop_assert_eq!(st.log.len(), 3);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary text is parsed or refused with a located error, never a panic; and whatever
    /// parses runs to an exit status against a state folder without one.
    #[test]
    fn arbitrary_scripts_never_panic(words in prop::collection::vec(prop_oneof![
        hostile(),
        prop::sample::select(vec![
            "try", "catch", "exit", "Get-CsPersistentChatState", "-Identity", "@(", "@{", "$_", "[Console]::Error",
            ".WriteLine(", "|", "Select-Object", "-ExpandProperty", "ConvertTo-Json", "=", "$x", "'service:p.x'",
        ]).prop_map(String::from),
    ], 0..12)) {
        let text = words.join(" ");
        if parse(&text).is_ok() {
            let dir = tempfile::tempdir().unwrap();
            chat_shell::init(dir.path(), &ChatShellState::new_pool("p.x", &[], &[]), false).unwrap();
            let out = chat_shell::run_script(dir.path(), &text);
            prop_assert!(out.exit_code == 0 || !out.stderr.is_empty() || text.to_ascii_lowercase().contains("exit"));
        }
    }
}
