//! Kubernetes' own CEL libraries (k8s.io/apiserver/pkg/cel/library, and cel-go's sets
//! extension, which Kubernetes' environment includes), registered on the
//! environment `x-kubernetes-validations` rules run in, next to the standard library and
//! the strings extension:
//!
//! - [`lists`]: `isSorted`, `sum`, `min`, `max`, `indexOf` and `lastIndexOf` on lists;
//! - [`regex`]: `find` and `findAll` on strings;
//! - [`url`]: `url`, `isURL` and the `get*` accessors of a URL;
//! - [`ip`]: `ip`, `isIP`, `ip.isCanonical` and `cidr`, `isCIDR` with their methods;
//! - [`quantity`]: `quantity`, `isQuantity` and the arithmetic and comparisons of quantities;
//! - [`semver`]: `semver`, `isSemver` and the accessors and comparisons of versions;
//! - [`sets`]: cel-go's `sets.contains`, `sets.equivalent` and `sets.intersects`.
//!
//! A library function that fails (a malformed address, quantity or pattern) reports an
//! [`ExecutionError::FunctionError`] whose message is upstream's, so that the rule fails
//! with that message as upstream's evaluation errors do.

mod ip;
mod lists;
mod quantity;
mod regex;
mod semver;
mod sets;
mod url;

#[cfg(test)]
mod tests;

use cel::common::value::CowVal;
use cel::{DeclarationError, Env, ExecutionError};

/// Registers every library on `env`.
pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    lists::register(env)?;
    regex::register(env)?;
    url::register(env)?;
    ip::register(env)?;
    quantity::register(env)?;
    semver::register(env)?;
    sets::register(env)?;
    Ok(())
}

/// `args` as the `N` arguments of an overload.
fn take<'b, 'v, const N: usize>(args: Vec<CowVal<'b, 'v>>) -> Result<[CowVal<'b, 'v>; N], ExecutionError> {
    args.try_into().map_err(|args: Vec<_>| ExecutionError::invalid_argument_count(N, args.len()))
}

/// An error of `function`, reported with `message` as its text.
fn failure(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

/// Implements [`cel::common::value::Val`] for a library's own value type: a `'static`
/// type that is `Clone`, `PartialEq` and `Debug`, of the CEL type `$cel_type` (a
/// `static` [`cel::common::types::Type`]), equal to the values of that type it is
/// `==` to.
macro_rules! opaque_value {
    ($rust:ty, $cel_type:path) => {
        impl cel::common::value::Val for $rust {
            fn get_type(&self) -> &cel::common::types::Type {
                &$cel_type
            }

            fn cel_type() -> &'static cel::common::types::Type {
                &$cel_type
            }

            fn equals(&self, other: &dyn cel::common::value::Val) -> bool {
                other.downcast_ref::<$rust>().is_some_and(|other| other == self)
            }

            fn clone_as_boxed<'v>(&self) -> Box<dyn cel::common::value::Val + 'v>
            where
                Self: 'v,
            {
                Box::new(self.clone())
            }

            fn as_any(&self) -> Option<&dyn std::any::Any> {
                Some(self)
            }
        }

        impl cel::common::value::StaticVal for $rust {}
    };
}
use opaque_value;
