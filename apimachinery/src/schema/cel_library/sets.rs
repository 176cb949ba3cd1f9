//! cel-go's sets extension (`ext.Sets`), part of Kubernetes' environment:
//! `sets.contains`, `sets.equivalent` and `sets.intersects` on lists, elements compared
//! with CEL's `==` (so `1`, `1u` and `1.0` are one element).

use cel::common::types::{CelBool, LIST_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

use super::take;

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("sets.contains", "list_sets_contains_list", vec![LIST_TYPE, LIST_TYPE], contains)?;
    env.add_overload("sets.equivalent", "list_sets_equivalent_list", vec![LIST_TYPE, LIST_TYPE], equivalent)?;
    env.add_overload("sets.intersects", "list_sets_intersects_list", vec![LIST_TYPE, LIST_TYPE], intersects)?;
    Ok(())
}

/// The elements of a list, borrowed.
fn elements<'b, 'v>(list: &'b (dyn Val + 'v)) -> Result<Vec<&'b (dyn Val + 'v)>, ExecutionError> {
    let mut items = list
        .as_iterable()
        .ok_or_else(|| ExecutionError::no_such_overload("sets", vec![list.get_type().name().to_owned()]))?
        .iter();
    let mut out = Vec::new();
    while let Some(item) = items.next() {
        out.push(item);
    }
    Ok(out)
}

/// Whether every element of `sub` is an element of `set`.
fn includes(set: &[&dyn Val], sub: &[&dyn Val]) -> bool {
    sub.iter().all(|x| set.iter().any(|y| y.equals(*x)))
}

fn contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [set, sub] = take(args)?;
    let (set, sub) = (elements(set.as_ref())?, elements(sub.as_ref())?);
    Ok(CowVal::owned(CelBool::from(includes(&set, &sub))))
}

fn equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take(args)?;
    let (a, b) = (elements(a.as_ref())?, elements(b.as_ref())?);
    Ok(CowVal::owned(CelBool::from(includes(&a, &b) && includes(&b, &a))))
}

fn intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take(args)?;
    let (a, b) = (elements(a.as_ref())?, elements(b.as_ref())?);
    Ok(CowVal::owned(CelBool::from(b.iter().any(|x| a.iter().any(|y| y.equals(*x))))))
}
