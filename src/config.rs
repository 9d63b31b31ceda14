//! `synack serve --config FILE`: a TOML file whose keys are the long flags of `synack serve`,
//! spelled the same (`iface = "eth0"`, `port = [80, 8080]`, `keepalive-timeout = 5`,
//! `quiet = true`).
//!
//! The file becomes command-line entries (`--key=value`) placed before the user's, so clap
//! checks and converts its values exactly as it does the flags'. A key the user also gave on the
//! command line (or one that conflicts with a flag the user gave, as `root` with `--body`) is
//! left out of the file's entries: flags win. The keys and their kinds come from clap's own
//! definition of the flags, so no second list can drift from them. An unknown key, or a value of
//! the wrong type, is an error naming the key and the file.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, CommandFactory};

use crate::cli::Cli;

/// The subcommand that takes `--config`.
const SUBCOMMAND: &str = "serve";
/// Long flags that are no keys of a config file.
const NOT_KEYS: [&str; 3] = ["config", "help", "version"];

/// `argv` with the entries of the `--config` file (if `synack serve` is given one) inserted
/// before the user's flags. Unchanged without `--config`. The error names the file and, for a
/// bad key or value, the key.
pub fn expand_args<I, T>(argv: I) -> Result<Vec<OsString>, String>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    if argv.get(1).map(OsString::as_os_str) != Some(OsStr::new(SUBCOMMAND)) {
        return Ok(argv);
    }
    let user = &argv[2..];
    let Some(path) = config_path(user) else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read --config {}: {e}", path.display()))?;
    let entries = file_entries(&path, &text, user)?;
    let mut out = Vec::with_capacity(argv.len() + entries.len());
    out.extend_from_slice(&argv[..2]);
    out.extend(entries);
    out.extend_from_slice(user);
    Ok(out)
}

/// The last `--config FILE` or `--config=FILE` among the user's flags (before any `--`).
fn config_path(user: &[OsString]) -> Option<std::path::PathBuf> {
    let mut found = None;
    let mut it = user.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            break;
        }
        if s == "--config" {
            found = it.next().map(std::path::PathBuf::from);
        } else if let Some(v) = a.as_encoded_bytes().strip_prefix(b"--config=") {
            // The bytes after an ASCII prefix of an OsStr are valid OsStr bytes.
            found = Some(std::path::PathBuf::from(
                String::from_utf8_lossy(v).into_owned(),
            ));
        }
    }
    found
}

/// `synack serve`'s clap command with nothing required, to parse parts of a command line.
fn serve_command() -> Command {
    let cli = Cli::command();
    let serve = cli
        .find_subcommand(SUBCOMMAND)
        .expect("the serve subcommand")
        .clone();
    serve
        .mut_args(|a| a.required(false))
        .no_binary_name(true)
        .disable_help_flag(true)
}

/// The command-line entries for the keys of `text` (the file at `path`) that `user` does not
/// override.
fn file_entries(path: &Path, text: &str, user: &[OsString]) -> Result<Vec<OsString>, String> {
    let file = path.display();
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let cmd = serve_command();
    // What the user gave on the command line; if it does not parse, the final parse says why.
    let given = cmd.clone().try_get_matches_from(user).ok();
    let user_gave = |arg: &Arg| {
        given
            .as_ref()
            .and_then(|m| m.value_source(arg.get_id().as_str()))
            == Some(ValueSource::CommandLine)
    };
    let keys: Vec<&str> = cmd
        .get_arguments()
        .filter_map(Arg::get_long)
        .filter(|l| !NOT_KEYS.contains(l))
        .collect();
    let mut entries = Vec::new();
    for (key, value) in &table {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && !NOT_KEYS.contains(&key.as_str()))
            .ok_or_else(|| {
                format!(
                    "{file}: unknown key `{key}`; the keys are the long flags of `synack serve`: {}",
                    keys.join(", ")
                )
            })?;
        let values = values_of(arg, value)
            .map_err(|expected| format!("{file}: key `{key}`: expected {expected}"))?;
        // Each value as clap would take it from the command line, checked alone so the
        // error names this key.
        let these: Vec<OsString> = match values {
            Values::Switch(false) => Vec::new(),
            Values::Switch(true) => vec![format!("--{key}").into()],
            Values::List(vs) => vs.iter().map(|v| format!("--{key}={v}").into()).collect(),
        };
        if let Err(e) = cmd.clone().try_get_matches_from(&these) {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or_default();
            return Err(format!(
                "{file}: key `{key}`: {}",
                first.strip_prefix("error: ").unwrap_or(first)
            ));
        }
        let overridden =
            user_gave(arg) || cmd.get_arg_conflicts_with(arg).into_iter().any(&user_gave);
        if !overridden {
            entries.extend(these);
        }
    }
    Ok(entries)
}

/// A key's value as command-line values.
enum Values {
    /// A flag without a value (`quiet = true`).
    Switch(bool),
    /// One value, or several for a flag that may repeat (`port = [80, 8080]`).
    List(Vec<String>),
}

/// The values of `value` for `arg`, or what was expected instead.
fn values_of(arg: &Arg, value: &toml::Value) -> Result<Values, String> {
    let name = arg
        .get_value_names()
        .and_then(|n| n.first())
        .map(|n| n.as_str().to_string())
        .unwrap_or_else(|| "VALUE".into());
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            other => Err(format!(
                "{name} (a string or a number, as --{} takes), found {}",
                arg.get_long().unwrap_or_default(),
                other.type_str()
            )),
        }
    };
    match arg.get_action() {
        ArgAction::SetTrue => match value {
            toml::Value::Boolean(b) => Ok(Values::Switch(*b)),
            other => Err(format!("true or false, found {}", other.type_str())),
        },
        ArgAction::Append => match value {
            toml::Value::Array(items) => Ok(Values::List(
                items.iter().map(scalar).collect::<Result<_, _>>()?,
            )),
            v => Ok(Values::List(vec![scalar(v)?])),
        },
        _ => match value {
            toml::Value::Array(_) => Err(format!("one {name}, found an array")),
            v => Ok(Values::List(vec![scalar(v)?])),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command as Sub, ServeArgs};
    use clap::Parser;

    struct File(std::path::PathBuf);
    impl File {
        fn new(name: &str, text: &str) -> File {
            // A directory of its own, so that dropping it races no other test.
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("synack-config-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            File(p)
        }
        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    fn serve(args: &[&str]) -> Result<ServeArgs, String> {
        let mut argv = vec!["synack", "serve"];
        argv.extend_from_slice(args);
        let argv = expand_args(argv)?;
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Sub::Serve(a) => Ok(*a),
            Sub::Check(_) | Sub::Load(_) => unreachable!(),
        }
    }

    const BASE: &str = "iface = \"eth0\"\nip = \"192.0.2.1\"\nport = [80, 8080]\n\
                        keepalive-timeout = 5\nquiet = true\nbody = \"hi\"\n";

    #[test]
    fn the_file_gives_every_flag() {
        let f = File::new("all.toml", BASE);
        let a = serve(&["--config", f.path()]).unwrap();
        assert_eq!(a.server.iface, "eth0");
        assert_eq!(a.server.ip[0].to_string(), "192.0.2.1");
        assert_eq!(a.server.port, [80, 8080]);
        assert_eq!(a.keepalive_timeout, 5);
        assert!(a.server.quiet);
        assert_eq!(a.body.as_deref(), Some("hi"));
        // Defaults stay for the keys the file does not give.
        assert_eq!(a.header_timeout, 10);
        assert_eq!(a.config.as_deref(), Some(f.0.as_path()));
        // --config=FILE works as well.
        let b = serve(&[&format!("--config={}", f.path())]).unwrap();
        assert_eq!(b.server.port, [80, 8080]);
    }

    #[test]
    fn flags_win_over_the_file() {
        let f = File::new("win.toml", BASE);
        let a = serve(&[
            "--port",
            "9000",
            "--config",
            f.path(),
            "--keepalive-timeout=7",
            "--iface",
            "eth1",
        ])
        .unwrap();
        // A repeatable flag replaces the file's list, not adds to it.
        assert_eq!(a.server.port, [9000]);
        assert_eq!(a.keepalive_timeout, 7);
        assert_eq!(a.server.iface, "eth1");
        assert_eq!(a.server.ip[0].to_string(), "192.0.2.1");
        // A flag that conflicts with a key of the file wins too.
        let a = serve(&["--config", f.path(), "--root", "/srv"]).unwrap();
        assert_eq!(a.body, None);
        assert_eq!(a.root.as_deref(), Some(Path::new("/srv")));
        // `false` leaves a switch off.
        let g = File::new("off.toml", &BASE.replace("quiet = true", "quiet = false"));
        assert!(!serve(&["--config", g.path()]).unwrap().server.quiet);
    }

    #[test]
    fn unknown_keys_are_named_with_the_file() {
        let f = File::new("unknown.toml", &format!("{BASE}keepalive_timeout = 3\n"));
        let e = serve(&["--config", f.path()]).unwrap_err();
        assert!(
            e.contains("unknown key `keepalive_timeout`") && e.contains(f.path()),
            "{e}"
        );
        let f = File::new("self.toml", &format!("{BASE}config = \"x\"\n"));
        let e = serve(&["--config", f.path()]).unwrap_err();
        assert!(e.contains("unknown key `config`"), "{e}");
        let f = File::new("table.toml", &format!("{BASE}[tls]\ncert = \"x\"\n"));
        let e = serve(&["--config", f.path()]).unwrap_err();
        assert!(e.contains("unknown key `tls`"), "{e}");
    }

    #[test]
    fn wrong_types_say_the_key_and_what_was_expected() {
        let cases = [
            ("port = \"eighty\"", "key `port`", "invalid value 'eighty'"),
            ("port = 0", "key `port`", "'--port <PORT>'"),
            (
                "keepalive-timeout = true",
                "key `keepalive-timeout`",
                "SECS",
            ),
            (
                "keepalive-timeout = -1",
                "key `keepalive-timeout`",
                "invalid value",
            ),
            ("quiet = 1", "key `quiet`", "true or false, found integer"),
            ("mtu = [1500]", "key `mtu`", "one BYTES, found an array"),
            ("iface = { a = 1 }", "key `iface`", "found table"),
            ("xdp-mode = \"fast\"", "key `xdp-mode`", "'fast'"),
        ];
        for (line, key, expected) in cases {
            let text = BASE
                .lines()
                .filter(|l| l.split(' ').next() != line.split(' ').next())
                .chain([line])
                .collect::<Vec<_>>()
                .join("\n");
            let f = File::new("types.toml", &text);
            let e = serve(&["--config", f.path()]).unwrap_err();
            assert!(
                e.contains(key) && e.contains(expected) && e.contains(f.path()),
                "{line}: {e}"
            );
        }
        let f = File::new("syntax.toml", "port = [80,\n");
        let e = serve(&["--config", f.path()]).unwrap_err();
        assert!(e.starts_with(f.path()), "{e}");
        let e = serve(&["--config", "/nonexistent/synack.toml"]).unwrap_err();
        assert!(
            e.contains("cannot read --config /nonexistent/synack.toml"),
            "{e}"
        );
    }

    /// The example shipped in dist/ is a valid configuration.
    #[test]
    fn the_example_config_parses() {
        let f = File::new("example.toml", include_str!("../dist/synack.toml"));
        let a = serve(&["--config", f.path()]).unwrap();
        assert_eq!(a.server.iface, "eth0");
        assert_eq!(a.root.as_deref(), Some(Path::new("/srv/www")));
    }

    #[test]
    fn other_commands_are_untouched() {
        let argv = ["synack", "check", "--iface", "x", "--config", "y"];
        let out = expand_args(argv).unwrap();
        assert_eq!(out, argv.map(OsString::from));
    }
}
