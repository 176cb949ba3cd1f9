//! Upstream's `library.Regex`: `find` and `findAll` on strings, with RE2 syntax (the
//! `regex` crate's, which is RE2's less a few rarely used escapes).

use cel::common::types::{CelInt, CelList, CelString};
use cel::common::value::Val;
use cel::{DeclarationError, Env, ExecutionError};
use regex::Regex;

use super::failure;

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_member_overload!(env, fn find: (CelString, CelString) -> Result<CelString>,
        id = "string_find_string")?;
    cel::add_member_overload!(env, fn find_all: (CelString, CelString) -> Result<CelList>,
        id = "string_find_all_string")?;
    cel::add_member_overload!(env, fn find_all_n: (CelString, CelString, CelInt) -> Result<CelList>,
        name = "findAll", id = "string_find_all_string_int")?;
    Ok(())
}

fn compile(function: &str, pattern: &str) -> Result<Regex, ExecutionError> {
    Regex::new(pattern).map_err(|e| failure(function, format!("Illegal regex: {e}")))
}

/// The first match of `pattern` in `this`, `""` if none.
fn find(this: &CelString<'_>, pattern: &CelString<'_>) -> Result<CelString<'static>, ExecutionError> {
    let re = compile("find", pattern.inner())?;
    Ok(re.find(this.inner()).map(|m| m.as_str().to_owned()).unwrap_or_default().into())
}

fn find_all(this: &CelString<'_>, pattern: &CelString<'_>) -> Result<CelList<'static>, ExecutionError> {
    matches(this, pattern, -1)
}

fn find_all_n(this: &CelString<'_>, pattern: &CelString<'_>, n: &CelInt) -> Result<CelList<'static>, ExecutionError> {
    matches(this, pattern, *n.inner())
}

/// The successive non-overlapping matches, at most `n` of them when `n` is not negative
/// (Go's `FindAllString`).
fn matches(this: &CelString<'_>, pattern: &CelString<'_>, n: i64) -> Result<CelList<'static>, ExecutionError> {
    let re = compile("findAll", pattern.inner())?;
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let found: Vec<Box<dyn Val>> = re
        .find_iter(this.inner())
        .take(limit)
        .map(|m| Box::new(CelString::from(m.as_str().to_owned())) as Box<dyn Val>)
        .collect();
    Ok(CelList::from(found))
}
