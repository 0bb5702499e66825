//! The bundled helper library (issue 3): it compiles to bitcode, verifies, and contains every edge case later
//! stages are tested against, each asserted by name and property.

use std::collections::BTreeMap;

use thinjit::llvm::{Context, Linkage, Module};

use crate::common;

/// Parses every helper .bc into one context and links them into one module (as the summary builder does).
fn with_library<R>(f: impl FnOnce(&Module<'_>) -> R) -> R {
    let ctx = Context::new();
    let mut files = common::helper_bitcode().into_iter();
    let mut lib = Module::parse_file(&ctx, &files.next().unwrap()).unwrap();
    for file in files {
        let m = Module::parse_file(&ctx, &file).unwrap();
        m.verify().unwrap();
        lib.link_in(m).unwrap();
    }
    lib.verify().unwrap();
    f(&lib)
}

fn called_names(m: &Module<'_>, caller: &str) -> Vec<String> {
    let f = m
        .function(caller)
        .unwrap_or_else(|| panic!("{caller} missing"));
    f.instructions()
        .filter_map(|i| i.called_function())
        .map(|c| c.name())
        .collect()
}

#[test]
fn every_helper_file_compiles_to_verified_bitcode() {
    let files = common::helper_bitcode();
    let stems: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["runtime", "values", "exceptions"] {
        assert!(
            stems.iter().any(|s| s == expected),
            "{expected}.bc missing from {stems:?}"
        );
    }
    let ctx = Context::new();
    for file in &files {
        let m = Module::parse_file(&ctx, file).unwrap();
        m.verify().unwrap();
        assert!(
            m.functions().any(|f| !f.is_declaration()),
            "{} defines nothing",
            file.display()
        );
    }
    assert!(common::helper_shared_library().exists());
}

#[test]
fn seed_scenario_helpers_exist_and_are_small() {
    with_library(|m| {
        for name in [
            "CreateWrappedValueFromInt",
            "CreateWrappedValueFromDouble",
            "CreateWrappedValueFromString",
            "WrappedValueGetInt",
            "WrappedValueAdd",
            "WrappedValueCompare",
            "WrappedValueConcat",
        ] {
            let f = m.function(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(!f.is_declaration(), "{name} has no body");
            assert_eq!(f.linkage(), Linkage::External);
        }
        let create = m.function("CreateWrappedValueFromInt").unwrap();
        assert!(
            create.instruction_count() < 50,
            "{}",
            create.instruction_count()
        );
        assert!(called_names(m, "CreateWrappedValueFromInt").contains(&"rt_alloc".to_string()));
    });
}

#[test]
fn host_callbacks_are_declarations_the_host_provides() {
    with_library(|m| {
        for name in [
            "thinjit_host_alloc",
            "thinjit_host_free",
            "thinjit_host_log",
            "thinjit_host_event",
        ] {
            let f = m
                .function(name)
                .unwrap_or_else(|| panic!("{name} not referenced"));
            assert!(
                f.is_declaration(),
                "{name} must be implemented by the host, not the library"
            );
        }
    });
}

#[test]
fn mutable_state_statics_and_initializers() {
    with_library(|m| {
        let counter = m.global("rt_shared_counter").unwrap();
        assert!(!counter.is_constant() && !counter.is_declaration());
        assert_eq!(counter.linkage(), Linkage::External);
        assert!(!m.global("rt_alloc_count").unwrap().is_constant());

        // A `static` mutable variable and a `static` function survive as locals.
        let static_vars: Vec<String> = m
            .globals()
            .filter(|g| g.linkage().is_local() && !g.is_constant())
            .map(|g| g.name())
            .collect();
        assert!(
            static_vars.iter().any(|n| n.contains("next_id")),
            "{static_vars:?}"
        );
        let clamp = m
            .function("clamp_small")
            .expect("static clamp_small kept as a local function");
        assert!(clamp.linkage().is_local());

        // The C++ intern table has a dynamic initializer registered in llvm.global_ctors, whose constructor
        // registers the destructor with __cxa_atexit.
        let ctors = m.global("llvm.global_ctors").expect("llvm.global_ctors");
        assert_eq!(ctors.linkage(), Linkage::Appending);
        let ctor_fns: Vec<String> = ctors
            .initializer()
            .unwrap()
            .operands()
            .flat_map(|entry| entry.operands())
            .filter_map(|v| v.as_function())
            .map(|f| f.name())
            .collect();
        assert!(!ctor_fns.is_empty());
        let registers_dtor = ctor_fns.iter().any(|ctor| {
            m.function(ctor)
                .unwrap()
                .instructions()
                .filter_map(|i| i.called_function())
                .any(|c| {
                    c.name() == "__cxa_atexit"
                        || c.instructions()
                            .filter_map(|i| i.called_function())
                            .any(|d| d.name() == "__cxa_atexit")
                })
        });
        assert!(
            registers_dtor,
            "no __cxa_atexit registration reachable from {ctor_fns:?}"
        );
    });
}

#[test]
fn constant_tables() {
    with_library(|m| {
        let squares = m.global("rt_squares").unwrap();
        assert!(squares.is_constant());
        assert_eq!(m.global_size(squares), 64 * 4);
        let local_tables: Vec<String> = m
            .globals()
            .filter(|g| g.linkage().is_local() && g.is_constant() && m.global_size(*g) >= 1024)
            .map(|g| g.name())
            .collect();
        assert!(
            local_tables.iter().any(|n| n.contains("crc")),
            "static const CRC table: {local_tables:?}"
        );
    });
}

#[test]
fn inlining_attributes_and_sizes() {
    with_library(|m| {
        let f = |n: &str| m.function(n).unwrap_or_else(|| panic!("{n} missing"));
        assert!(f("rt_noinline_add").has_attribute("noinline"));
        let always = f("rt_always_inline_mix");
        assert!(always.has_attribute("alwaysinline"));
        assert!(
            always.instruction_count() > 100,
            "{}",
            always.instruction_count()
        );
        assert!(f("rt_big_checksum").instruction_count() > 150);
        assert!(f("rt_report_error").has_attribute("cold"));
        assert!(f("rt_hot_add").has_attribute("hot"));
        assert!(f("rt_debug_identity").has_attribute("optnone"));
        assert_eq!(f("rt_weak_hook").linkage(), Linkage::WeakAny);
    });
}

#[test]
fn eligibility_edge_cases() {
    with_library(|m| {
        let f = |n: &str| m.function(n).unwrap_or_else(|| panic!("{n} missing"));
        let sum = f("rt_sum_varargs");
        assert!(sum.is_var_arg());
        assert!(called_names(m, "rt_sum_varargs")
            .iter()
            .any(|c| c == "llvm.va_start.p0" || c == "llvm.va_start"));
        assert!(
            called_names(m, "rt_fib").contains(&"rt_fib".to_string()),
            "rt_fib must stay recursive"
        );
        assert!(f("rt_asm_barrier")
            .instructions()
            .filter_map(|i| i.called_value())
            .any(|v| v.is_inline_asm()));
        assert!(m.global("rt_tls_depth").unwrap().is_thread_local());
        let takes_blockaddress = f("rt_dispatch").instructions().any(|i| {
            i.operands().any(|op| op.is_block_address())
                || i.operands()
                    .filter_map(|op| op.as_global_variable())
                    .filter_map(|g| g.initializer())
                    .any(|init| init.operands().any(|e| e.is_block_address()))
        }) || m
            .globals()
            .filter_map(|g| g.initializer())
            .any(|init| init.operands().any(|e| e.is_block_address()));
        assert!(takes_blockaddress, "rt_dispatch must use blockaddress");
        let non_intrinsic = |caller: &str| -> Vec<String> {
            called_names(m, caller)
                .into_iter()
                .filter(|c| !c.starts_with("llvm."))
                .collect()
        };
        assert_eq!(non_intrinsic("rt_chain_a"), ["rt_chain_b"]);
        assert_eq!(non_intrinsic("rt_chain_b"), ["rt_chain_c"]);
    });
}

#[test]
fn cxx_inline_templates_and_exceptions() {
    with_library(|m| {
        let linkonce: Vec<String> = m
            .functions()
            .filter(|f| f.linkage() == Linkage::LinkOnceOdr)
            .map(|f| f.name())
            .collect();
        assert!(
            linkonce.iter().any(|n| n.starts_with("_Z")),
            "C++ inline/template definitions: {linkonce:?}"
        );
        let div = m.function("rt_checked_div").unwrap();
        let opcodes: BTreeMap<String, usize> = div
            .instructions()
            .chain(
                div.instructions()
                    .filter_map(|i| i.called_function())
                    .filter(|c| !c.is_declaration())
                    .flat_map(|c| c.instructions()),
            )
            .fold(BTreeMap::new(), |mut acc, i| {
                *acc.entry(format!("{:?}", i.opcode())).or_default() += 1;
                acc
            });
        assert!(
            opcodes.contains_key("LLVMInvoke") && opcodes.contains_key("LLVMLandingPad"),
            "{opcodes:?}"
        );
    });
}
