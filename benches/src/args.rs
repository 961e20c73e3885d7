//! A tiny `--name value` parser: two benches with a handful of numeric options do not
//! justify another dependency.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{Context, Result, bail};

/// One accepted option: name (without `--`), value placeholder, help text.
pub type OptSpec = (&'static str, &'static str, &'static str);

pub struct Args {
    values: BTreeMap<String, String>,
}

impl Args {
    /// Parses the process arguments. `--help` prints usage and exits.
    pub fn from_env(about: &str, spec: &[OptSpec]) -> Result<Self> {
        Self::parse(std::env::args().skip(1), about, spec)
    }

    pub fn parse(
        args: impl IntoIterator<Item = String>,
        about: &str,
        spec: &[OptSpec],
    ) -> Result<Self> {
        let mut values = BTreeMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                println!("{}", usage(about, spec));
                std::process::exit(0);
            }
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument `{arg}`\n\n{}", usage(about, spec));
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (name, None),
            };
            if !spec.iter().any(|(n, _, _)| *n == name) {
                bail!("unknown option `--{name}`\n\n{}", usage(about, spec));
            }
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .with_context(|| format!("`--{name}` needs a value"))?,
            };
            values.insert(name.to_owned(), value);
        }
        Ok(Self { values })
    }

    /// The option's value, or `default` when it was not given.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| anyhow::anyhow!("`--{name} {v}`: {e}")),
        }
    }

    /// A comma-separated list, e.g. `--clients 1,10,50`.
    pub fn list<T: FromStr + Clone>(&self, name: &str, default: &[T]) -> Result<Vec<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default.to_vec()),
            Some(v) => v
                .split(',')
                .map(|item| {
                    item.trim()
                        .parse()
                        .map_err(|e| anyhow::anyhow!("`--{name} {v}`: `{item}`: {e}"))
                })
                .collect(),
        }
    }
}

fn usage(about: &str, spec: &[OptSpec]) -> String {
    let mut out = format!("{about}\n\nOptions:\n");
    for (name, value, help) in spec {
        let flag = format!("--{name} {value}");
        out += &format!("  {flag:<18} {help}\n");
    }
    out
}

/// Parses `WxH`, e.g. `1280x720`.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    let (w, h) = s
        .split_once('x')
        .with_context(|| format!("size `{s}` is not WIDTHxHEIGHT"))?;
    let (w, h): (u32, u32) = (
        w.parse().with_context(|| format!("width in `{s}`"))?,
        h.parse().with_context(|| format!("height in `{s}`"))?,
    );
    if w < 16 || h < 16 || w % 2 != 0 || h % 2 != 0 {
        bail!("size `{s}`: width and height must be even and at least 16");
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[OptSpec] = &[("secs", "S", "seconds"), ("clients", "LIST", "clients")];

    fn parse(args: &[&str]) -> Result<Args> {
        Args::parse(args.iter().map(|s| s.to_string()), "test", SPEC)
    }

    #[test]
    fn values_lists_and_defaults() {
        let a = parse(&["--secs", "2.5", "--clients=1,10"]).unwrap();
        assert_eq!(a.get("secs", 1.0).unwrap(), 2.5);
        assert_eq!(a.list("clients", &[5u32]).unwrap(), vec![1, 10]);
        let b = parse(&[]).unwrap();
        assert_eq!(b.list("clients", &[5u32]).unwrap(), vec![5]);
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(parse(&["--nope", "1"]).is_err());
        assert!(parse(&["--secs"]).is_err());
        assert!(parse(&["stray"]).is_err());
        assert!(parse(&["--secs", "x"]).unwrap().get("secs", 1.0).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1280x720").unwrap(), (1280, 720));
        assert!(parse_size("1281x720").is_err());
        assert!(parse_size("720p").is_err());
    }
}
