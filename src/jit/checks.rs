//! The engine's guards against scripts that would take the host down or run wrong code.
//!
//! In: a parsed and verified script module (or a name to look up, or ORC's code generation failures). Out:
//! `Ok`, or the typed error the engine returns instead of compiling, calling or keeping the script:
//! - [`script`]: the pre-codegen check ([`crate::check::module`]) and helper redefinitions that ORC does not
//!   see (an `available_externally` body of a helper would silently replace it in every caller the optimizer
//!   inlines it into);
//! - [`function_address`]: an entry point that names data is an [`Error::InvalidEntry`] before anyone calls it;
//! - [`codegen_failure`]: a lazily compiled script whose code generation reported an error diagnostic.

use std::collections::BTreeSet;

use crate::llvm::facts::CodegenFailure;
use crate::llvm::orc::LlJit;
use crate::llvm::{Linkage, Module};
use crate::summary::ObjectTarget;
use crate::{Error, OrcFailure, Result};

/// Checks a script before import, optimization and code generation: the target can compile it, and it
/// does not carry its own body of a helper.
pub(super) fn script(
    module: &Module<'_>,
    name: &str,
    target: &ObjectTarget,
    helper_symbols: &BTreeSet<String>,
    target_check: bool,
) -> Result<()> {
    let bodies = module
        .functions()
        .filter(|f| f.linkage() == Linkage::AvailableExternally)
        .map(|f| f.name())
        .chain(
            module
                .globals()
                .filter(|g| g.linkage() == Linkage::AvailableExternally)
                .map(|g| g.name()),
        );
    for symbol in bodies {
        if helper_symbols.contains(&symbol) {
            return Err(Error::DuplicateDefinition {
                symbol,
                first: Some("the helper runtime".into()),
                second: format!("script `{name}` (an available_externally body)"),
                source: None,
            });
        }
    }
    if target_check {
        crate::check::module(module, name, target)?;
    }
    Ok(())
}

/// The address of `name`, which must be a function: looking up a variable as something to call is an
/// [`Error::InvalidEntry`]. `lookup_error` turns ORC's failure into the engine's error.
pub(super) fn function_address(
    jit: &LlJit,
    name: &str,
    lookup_error: impl FnOnce(OrcFailure) -> Error,
) -> Result<u64> {
    match jit.lookup_flags(name) {
        Ok((_, false)) => Err(Error::InvalidEntry {
            symbol: name.to_owned(),
            reason: "it is a variable (data), not a function".into(),
        }),
        Ok((address, true)) => Ok(address),
        Err(message) => Err(lookup_error(message)),
    }
}

/// The error for code generation failures ORC reported while materializing (lazy scripts), if any.
pub(super) fn codegen_failure(failures: &[CodegenFailure]) -> Option<Error> {
    let first = failures.first()?;
    let message: Vec<&str> = failures
        .iter()
        .filter(|f| f.module == first.module)
        .map(|f| f.message.as_str())
        .collect();
    Some(Error::Codegen {
        script: first.name.clone(),
        function: first.function.clone(),
        message: message.join("; "),
    })
}
