//! Upstream's `library.SemverLib`: `semver`, `isSemver` (each optionally normalizing:
//! a leading `v`, missing minor and patch, leading zeros), and `major`, `minor`, `patch`,
//! `isGreaterThan`, `isLessThan` and `compareTo` on a version. Versions compare by
//! semver precedence, build metadata ignored, and are equal when neither precedes.

use std::cmp::Ordering;

use cel::common::types::{CelBool, CelInt, CelString, Type};
use cel::{DeclarationError, Env, ExecutionError};
use semver::Version;

use super::{failure, opaque_value};

static SEMVER_TYPE: Type = Type::new_unspecified_type("kubernetes.Semver");

/// A semantic version.
#[derive(Clone, Debug)]
pub(super) struct Semver(Version);

impl PartialEq for Semver {
    fn eq(&self, other: &Self) -> bool {
        self.0.cmp_precedence(&other.0) == Ordering::Equal
    }
}

opaque_value!(Semver, SEMVER_TYPE);

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn semver: (CelString) -> Result<Semver>, id = "string_to_semver")?;
    cel::add_overload!(env, fn semver_normalize: (CelString, CelBool) -> Result<Semver>, name = "semver",
        id = "string_bool_to_semver")?;
    cel::add_overload!(env, fn is_semver: (CelString) -> CelBool, id = "is_semver_string")?;
    cel::add_overload!(env, fn is_semver_normalize: (CelString, CelBool) -> CelBool, name = "isSemver",
        id = "is_semver_string_bool")?;
    cel::add_member_overload!(env, fn major: (Semver) -> CelInt, id = "semver_major")?;
    cel::add_member_overload!(env, fn minor: (Semver) -> CelInt, id = "semver_minor")?;
    cel::add_member_overload!(env, fn patch: (Semver) -> CelInt, id = "semver_patch")?;
    cel::add_member_overload!(env, fn is_greater_than: (Semver, Semver) -> CelBool, id = "semver_is_greater_than")?;
    cel::add_member_overload!(env, fn is_less_than: (Semver, Semver) -> CelBool, id = "semver_is_less_than")?;
    cel::add_member_overload!(env, fn compare_to: (Semver, Semver) -> CelInt, id = "semver_compare_to")?;
    Ok(())
}

/// Parses `s`, first normalized as upstream's `normalizeAndParse` does when asked to.
fn parse(s: &str, normalize: bool) -> Result<Version, String> {
    if !normalize {
        return Version::parse(s).map_err(|e| e.to_string());
    }
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts: Vec<String> = s
        .splitn(3, '.')
        .map(|part| {
            if part.len() <= 1 {
                return part.to_owned();
            }
            let trimmed = part.trim_start_matches('0');
            if trimmed.starts_with(|c: char| c.is_ascii_digit()) { trimmed.to_owned() } else { format!("0{trimmed}") }
        })
        .collect();
    if parts.len() < 3 {
        if parts.last().is_some_and(|p| p.contains(['+', '-'])) {
            return Err("short version cannot contain PreRelease/Build meta data".to_owned());
        }
        parts.resize(3, "0".to_owned());
    }
    Version::parse(&parts.join(".")).map_err(|e| e.to_string())
}

fn semver(s: &CelString<'_>) -> Result<Semver, ExecutionError> {
    parse(s.inner(), false).map(Semver).map_err(|e| failure("semver", e))
}

fn semver_normalize(s: &CelString<'_>, normalize: &CelBool) -> Result<Semver, ExecutionError> {
    parse(s.inner(), *normalize.inner()).map(Semver).map_err(|e| failure("semver", e))
}

fn is_semver(s: &CelString<'_>) -> CelBool {
    CelBool::from(parse(s.inner(), false).is_ok())
}

fn is_semver_normalize(s: &CelString<'_>, normalize: &CelBool) -> CelBool {
    CelBool::from(parse(s.inner(), *normalize.inner()).is_ok())
}

/// Go's `int64(uint64)`: the number's low 64 bits.
fn int(n: u64) -> CelInt {
    CelInt::from(n as i64)
}

fn major(v: &Semver) -> CelInt {
    int(v.0.major)
}

fn minor(v: &Semver) -> CelInt {
    int(v.0.minor)
}

fn patch(v: &Semver) -> CelInt {
    int(v.0.patch)
}

fn is_greater_than(v: &Semver, other: &Semver) -> CelBool {
    CelBool::from(v.0.cmp_precedence(&other.0) == Ordering::Greater)
}

fn is_less_than(v: &Semver, other: &Semver) -> CelBool {
    CelBool::from(v.0.cmp_precedence(&other.0) == Ordering::Less)
}

fn compare_to(v: &Semver, other: &Semver) -> CelInt {
    CelInt::from(v.0.cmp_precedence(&other.0) as i64)
}
