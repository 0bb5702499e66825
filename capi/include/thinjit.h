/*
 * thinjit.h — the C API of thinjit: ThinLTO-style import of a precompiled C/C++ helper runtime into the
 * modules of a C or C++ JIT built on LLVM ORCv2.
 *
 * C99, usable from C++. Link: -lthinjit_capi (libthinjit_capi.so or libthinjit_capi.a) and the same LLVM the
 * library was built against: LLVM 19, `libLLVM-19.so` (`llvm-config --libs` of LLVM 19, which names the
 * shared library). LLVM-C handles (LLVMModuleRef, LLVMContextRef, LLVMOrcLLJITRef, ...) cross this API
 * unchanged because both sides share that one libLLVM.
 *
 * Conventions (those of llvm-c/LLJIT.h):
 *  - Handles are opaque pointers. Every handle made by thinjit has one dispose function; passing NULL to a
 *    dispose function does nothing.
 *  - Every fallible function returns a thinjitErrorRef: NULL on success, otherwise an error the caller owns
 *    and frees with thinjit_error_dispose. On failure out-parameters are left untouched.
 *  - A NULL, disposed or unknown thinjit handle is an error of kind THINJIT_ERROR_INVALID_ARGUMENT (thinjit
 *    keeps a table of live handles and never dereferences one it did not hand out). A NULL LLVM handle is
 *    the same error; a dangling LLVM handle cannot be detected.
 *  - `char *` results are owned by the caller and freed with thinjit_string_dispose. `const char *` results
 *    are borrowed from the handle they came from and stay valid until it is disposed.
 *  - No C++ exception or Rust panic ever crosses this API: an internal failure is THINJIT_ERROR_INTERNAL.
 *  - Bad input (a damaged summary, a module that does not verify, a clash with a helper symbol, a summary
 *    for another target) is an error value; the caller's module is left as it was.
 *
 * Thread safety: docs/capi.md. In short: summaries are immutable and may be shared by any number of threads;
 * a config may be read by concurrent imports but not modified meanwhile; thinjit_import / thinjit_optimize
 * may run concurrently on modules in different LLVMContexts; a handle must not be disposed while another
 * thread uses it.
 */
#ifndef THINJIT_H
#define THINJIT_H

#include <stddef.h>
#include <stdint.h>

#include <llvm-c/Orc.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------------
 * Errors and strings
 * ------------------------------------------------------------------------------------------------------- */

/** A failure: a kind to branch on and a message naming the file, symbol or cause (LLVM's own text included). */
typedef struct thinjitOpaqueError *thinjitErrorRef;

/** What kind of failure an error is. */
typedef enum {
    THINJIT_ERROR_INVALID_ARGUMENT = 1, /* NULL / disposed / unknown handle, NULL pointer, bad enum value */
    THINJIT_ERROR_IO = 2,               /* reading or writing a file */
    THINJIT_ERROR_PARSE = 3,            /* IR or bitcode that LLVM cannot parse */
    THINJIT_ERROR_VERIFY = 4,           /* a module that does not pass LLVM's verifier */
    THINJIT_ERROR_LINK = 5,             /* linking helper bodies into the module failed */
    THINJIT_ERROR_PASSES = 6,           /* the optimization pipeline failed */
    THINJIT_ERROR_TARGET = 7,           /* target lookup or target machine creation failed */
    THINJIT_ERROR_SUMMARY = 8,          /* damaged, truncated, stale or mismatched summary (other target) */
    THINJIT_ERROR_IMPORT = 9,           /* the import itself failed */
    THINJIT_ERROR_SYMBOL = 10,          /* the module defines a helper's symbol; unresolved or undefined symbol */
    THINJIT_ERROR_JIT = 11,             /* ORC reported an error */
    THINJIT_ERROR_CONFIG = 12,          /* unknown knob name or a value out of range */
    THINJIT_ERROR_INTERNAL = 13,        /* a bug in thinjit (caught before it could unwind into the caller) */
    THINJIT_ERROR_OTHER = 14,
    THINJIT_ERROR_CODEGEN = 15          /* code generation failed */
} thinjitErrorKind;

/** The kind of `err`; THINJIT_ERROR_INVALID_ARGUMENT for a NULL or unknown error handle. */
thinjitErrorKind thinjit_error_kind(thinjitErrorRef err);

/** The message of `err`, borrowed: valid until thinjit_error_dispose(err). A fixed text for NULL/unknown. */
const char *thinjit_error_message(thinjitErrorRef err);

/** Frees an error. NULL is ignored. */
void thinjit_error_dispose(thinjitErrorRef err);

/** Frees a `char *` returned by thinjit. NULL is ignored. Never use free() or LLVMDisposeMessage on it. */
void thinjit_string_dispose(char *str);

/** thinjit's version ("0.1.0"); a static string. */
const char *thinjit_version(void);

/** The LLVM version thinjit was built against ("19.1.7"); a static string. The caller must link the same. */
const char *thinjit_llvm_version(void);

/* ---------------------------------------------------------------------------------------------------------
 * Summaries (built by `precompute-summary`)
 * ------------------------------------------------------------------------------------------------------- */

/** A loaded helper summary: index, per-function shards, the helper library (and maybe its object). */
typedef struct thinjitOpaqueSummary *thinjitSummaryRef;

/**
 * Loads the summary file at `path` (borrowed, NUL-terminated). The file is mapped; only its header and index
 * are decoded now. On success *out owns a summary: free it with thinjit_summary_dispose (imports, runtimes and
 * transforms made from it keep what they need, so it may be disposed before them).
 */
thinjitErrorRef thinjit_summary_load(const char *path, thinjitSummaryRef *out);

/**
 * A summary from `size` bytes at `data` (copied; the caller keeps its buffer). `name` (borrowed, may be NULL)
 * stands for the file name in error messages.
 */
thinjitErrorRef thinjit_summary_load_from_memory(const void *data, size_t size, const char *name,
                                                 thinjitSummaryRef *out);

/** Frees a summary. NULL is ignored. */
void thinjit_summary_dispose(thinjitSummaryRef summary);

/** Number of helper functions in the summary's index. */
thinjitErrorRef thinjit_summary_function_count(thinjitSummaryRef summary, size_t *out);

/** Number of helper variables in the summary's index. */
thinjitErrorRef thinjit_summary_variable_count(thinjitSummaryRef summary, size_t *out);

/** The helpers' target triple; *out is owned by the caller (thinjit_string_dispose). */
thinjitErrorRef thinjit_summary_target_triple(thinjitSummaryRef summary, char **out);

/** *out = 1 when the summary carries a precompiled runtime object (`precompute-summary --object`), else 0. */
thinjitErrorRef thinjit_summary_has_runtime_object(thinjitSummaryRef summary, int *out);

/** *out = 1 when the helper library defines `name` (a function or a variable), else 0. */
thinjitErrorRef thinjit_summary_defines(thinjitSummaryRef summary, const char *name, int *out);

/* ---------------------------------------------------------------------------------------------------------
 * Import configuration
 * ------------------------------------------------------------------------------------------------------- */

/** Import knobs. Defaults are LLVM's FunctionImporter defaults. */
typedef struct thinjitOpaqueConfig *thinjitConfigRef;

/** Where the helper runtime lives at run time. */
typedef enum {
    THINJIT_RUNTIME_JIT_RESIDENT = 0, /* the summary's helper library is JIT'd once (the default) */
    THINJIT_RUNTIME_HOST_NATIVE = 1   /* the helpers are native code in the host or a shared library */
} thinjitRuntimeMode;

/** A configuration with the defaults; free it with thinjit_config_dispose. */
thinjitErrorRef thinjit_config_create(thinjitConfigRef *out);

/** Frees a configuration. NULL is ignored. */
void thinjit_config_dispose(thinjitConfigRef config);

/**
 * Sets one knob by LLVM's option name (both strings borrowed):
 *   import-instr-limit (unsigned), import-instr-evolution-factor, import-hot-evolution-factor,
 *   import-hot-multiplier, import-critical-multiplier, import-cold-multiplier (numbers >= 0),
 *   force-import-all, always-import-alwaysinline (true/false/1/0),
 *   max-total-instructions (unsigned, or "none"), runtime-mode (jit-resident / host-native),
 *   allow, deny (comma-separated symbol names, added to the list; "" clears it).
 * An unknown name or a bad value is THINJIT_ERROR_CONFIG and leaves the config as it was.
 */
thinjitErrorRef thinjit_config_set(thinjitConfigRef config, const char *name, const char *value);

/** The current value of a knob (same names as thinjit_config_set); *out is owned by the caller. */
thinjitErrorRef thinjit_config_get(thinjitConfigRef config, const char *name, char **out);

/** Sets import-instr-limit. */
thinjitErrorRef thinjit_config_set_instr_limit(thinjitConfigRef config, uint32_t limit);

/** Sets the runtime mode (a thinjitRuntimeMode value). */
thinjitErrorRef thinjit_config_set_runtime_mode(thinjitConfigRef config, int mode);

/** Adds a helper function to the allow list (when the list is non-empty, only its functions are imported). */
thinjitErrorRef thinjit_config_allow(thinjitConfigRef config, const char *function);

/** Adds a helper function or variable to the deny list (never imported). */
thinjitErrorRef thinjit_config_deny(thinjitConfigRef config, const char *symbol);

/* ---------------------------------------------------------------------------------------------------------
 * Import and optimize, on the caller's module in the caller's context
 * ------------------------------------------------------------------------------------------------------- */

/** An import report: one entry per considered callee with its decision and reason, totals, stage times. */
typedef struct thinjitOpaqueReport *thinjitReportRef;

/**
 * Imports the helpers the summary's planner selects into `module` (borrowed; it stays the caller's, in its
 * own LLVMContext): their bodies are linked in as `available_externally` (constants with their
 * initializers), so the module's own definitions are the same before and after, and script functions get
 * the helpers' target attributes so LLVM can inline them. The same planner and importer as thinjit's Rust
 * API; nothing is copied or re-parsed except the planned shards.
 *
 * `config` is borrowed; NULL means the defaults. When `report` is non-NULL, *report receives a report the
 * caller owns (thinjit_report_dispose). The module must verify; when it has no target triple it is taken to
 * be for the host (what LLJIT compiles it for) and checked against the summary's triple. On any error the
 * module is unchanged. The module's context must not be used by another thread during the call.
 */
thinjitErrorRef thinjit_import(LLVMModuleRef module, thinjitSummaryRef summary, thinjitConfigRef config,
                               thinjitReportRef *report);

/** Optimization levels of thinjit_optimize. */
typedef enum { THINJIT_OPT_O0 = 0, THINJIT_OPT_O1 = 1, THINJIT_OPT_O2 = 2, THINJIT_OPT_O3 = 3 } thinjitOptLevel;

/**
 * Runs the import-aware pipeline on `module` (borrowed) for the host: when helper bodies were imported, the
 * inliner first, then `elim-avail-extern` and `globaldce` (imported bodies that were not inlined are dropped;
 * their calls go to the runtime's one copy), then `default<On>`. Sets the module's triple and data layout to
 * the host's when it has none. `level` is a thinjitOptLevel. `report` (borrowed, may be NULL) records the
 * time taken and, per considered function, the calls to it left afterwards (`calls_after_optimize`). A module
 * that does not verify is THINJIT_ERROR_VERIFY and is not touched.
 */
thinjitErrorRef thinjit_optimize(LLVMModuleRef module, int level, thinjitReportRef report);

/* ---------------------------------------------------------------------------------------------------------
 * Reports
 * ------------------------------------------------------------------------------------------------------- */

typedef enum { THINJIT_SYMBOL_FUNCTION = 0, THINJIT_SYMBOL_VARIABLE = 1 } thinjitSymbolKind;

/** Why a considered symbol was not imported (THINJIT_REASON_NONE: it was imported). */
typedef enum {
    THINJIT_REASON_NONE = 0,
    THINJIT_REASON_OVER_THRESHOLD = 1,
    THINJIT_REASON_NOINLINE = 2,
    THINJIT_REASON_INTERPOSABLE = 3,
    THINJIT_REASON_NOT_ELIGIBLE = 4,
    THINJIT_REASON_LOCAL_NOT_COPYABLE = 5,
    THINJIT_REASON_NOT_IN_SUMMARY = 6,
    THINJIT_REASON_DENIED = 7,
    THINJIT_REASON_TOTAL_CAP_REACHED = 8,
    THINJIT_REASON_DEFINED_BY_SCRIPT = 9,
    THINJIT_REASON_MUTABLE = 10,
    THINJIT_REASON_INITIALIZER_NOT_IMPORTABLE = 11,
    THINJIT_REASON_NO_DEFINITION_AVAILABLE = 12,
    THINJIT_REASON_OTHER = 13
} thinjitReason;

/** One considered callee or referenced variable. Strings are borrowed from the report. */
typedef struct {
    const char *name;
    int kind;             /* thinjitSymbolKind */
    int imported;         /* 1: imported, 0: not */
    int reason;           /* thinjitReason; THINJIT_REASON_NONE when imported */
    const char *reason_text; /* human-readable reason; "" when imported */
    uint64_t size;        /* instructions (functions) or bytes (variables); 0 when unknown */
    uint32_t threshold;   /* threshold of the best call edge that reached it */
    uint32_t depth;       /* call depth from the module: 1 for its own callees */
    int local_copy;       /* host-native: imported as a private copy of a static helper */
    const char *not_inlinable; /* imported but LLVM will refuse to inline it, and why; NULL otherwise */
    int64_t calls_after_optimize; /* functions: calls to it left in the module after thinjit_optimize (0: all
                                     inlined or dropped); -1 before optimization and for variables */
} thinjitReportEntry;

typedef struct {
    uint64_t considered;
    uint64_t imported_functions;
    uint64_t imported_variables;
    uint64_t imported_instructions;
    uint64_t not_imported;
} thinjitReportTotals;

/** Stage times in nanoseconds; optimize_ns is 0 until thinjit_optimize recorded it. */
typedef struct {
    uint64_t verify_ns;
    uint64_t plan_ns;
    uint64_t parse_shards_ns;
    uint64_t link_ns;
    uint64_t stamp_ns;
    uint64_t import_total_ns;
    uint64_t optimize_ns;
} thinjitReportTimes;

/** Frees a report (and every string borrowed from it). NULL is ignored. */
void thinjit_report_dispose(thinjitReportRef report);

/** The name of the module the report is about (borrowed from the report). */
thinjitErrorRef thinjit_report_module(thinjitReportRef report, const char **out);

/** Number of entries (sorted by name). */
thinjitErrorRef thinjit_report_entry_count(thinjitReportRef report, size_t *out);

/** Entry `index` (< the count, else THINJIT_ERROR_INVALID_ARGUMENT). */
thinjitErrorRef thinjit_report_entry(thinjitReportRef report, size_t index, thinjitReportEntry *out);

/** The entry for `name`: *found = 1 and *out filled, or *found = 0 when it was not considered. */
thinjitErrorRef thinjit_report_find(thinjitReportRef report, const char *name, thinjitReportEntry *out,
                                    int *found);

thinjitErrorRef thinjit_report_totals(thinjitReportRef report, thinjitReportTotals *out);

thinjitErrorRef thinjit_report_times(thinjitReportRef report, thinjitReportTimes *out);

/** The report as JSON (the Rust API's serde form plus "optimize_ns" and "calls_after_optimize"); *out owned
 *  by the caller. */
thinjitErrorRef thinjit_report_to_json(thinjitReportRef report, char **out);

/** The report as a readable table; *out owned by the caller. */
thinjitErrorRef thinjit_report_to_text(thinjitReportRef report, char **out);

/* ---------------------------------------------------------------------------------------------------------
 * ORC plug-in for the caller's own LLJIT
 *
 * From C++: LLVMOrcLLJITRef is `reinterpret_cast<LLVMOrcLLJITRef>(J.get())` for a `std::unique_ptr<LLJIT> J`,
 * and LLVMOrcJITDylibRef `reinterpret_cast<LLVMOrcJITDylibRef>(&J->getMainJITDylib())` (what LLVM's own
 * `wrap` does in OrcV2CBindings.cpp).
 * ------------------------------------------------------------------------------------------------------- */

/** The JIT-resident helper runtime in one JITDylib of the caller's LLJIT. */
typedef struct thinjitOpaqueResidentRuntime *thinjitResidentRuntimeRef;

/** A host function or variable the helper runtime calls or reads (its host callbacks). */
typedef struct {
    const char *name; /* borrowed for the call */
    uint64_t address;
} thinjitHostSymbol;

/**
 * Adds the summary's helper runtime to `dylib` (NULL: the main JITDylib) of the caller's LLJIT `jit`
 * (borrowed; it must outlive the runtime): defines `host_symbols` (an array of `host_symbol_count`, may be
 * NULL when 0) and thinjit's atexit registry there, redirects the helper code's `__cxa_atexit` / `atexit` /
 * `__dso_handle` to that registry, adds the precompiled runtime object when `use_object` is non-zero and the
 * object suits the JIT (else compiles the library bitcode), links it, and runs the static constructors once.
 * One runtime per JITDylib. The summary must match the JIT's target (else THINJIT_ERROR_SUMMARY). A helper
 * reference nothing resolves fails the install (THINJIT_ERROR_SYMBOL, or THINJIT_ERROR_JIT "Failed to
 * materialize" when ORC sent the missing names to the LLJIT's own error reporter, as LLVM's default one logs
 * them). *out owns the runtime: dispose it (which runs the destructors) before disposing the LLJIT.
 */
thinjitErrorRef thinjit_resident_runtime_install(LLVMOrcLLJITRef jit, LLVMOrcJITDylibRef dylib,
                                                 thinjitSummaryRef summary, const thinjitHostSymbol *host_symbols,
                                                 size_t host_symbol_count, int use_object,
                                                 thinjitResidentRuntimeRef *out);

/** *out = 1 when the runtime came from the precompiled object, 2 when from the library bitcode, 3 when from the
 * summary's shared runtime (mapped by the system loader). */
thinjitErrorRef thinjit_resident_runtime_source(thinjitResidentRuntimeRef runtime, int *out);

/** Number of static constructors the runtime ran (once each). */
thinjitErrorRef thinjit_resident_runtime_initializer_count(thinjitResidentRuntimeRef runtime, size_t *out);

/** *out = 1 when the runtime defines `name` (a module added later must not define it again). */
thinjitErrorRef thinjit_resident_runtime_defines(thinjitResidentRuntimeRef runtime, const char *name, int *out);

/**
 * Runs the atexit handlers the helper code registered (last first), then the static destructors — once; later
 * calls do nothing. `ran` (may be NULL) receives how many ran. The LLJIT must still be alive.
 */
thinjitErrorRef thinjit_resident_runtime_shutdown(thinjitResidentRuntimeRef runtime, size_t *ran);

/** Shuts the runtime down if that has not happened, and frees the handle. Call before LLVMOrcDisposeLLJIT. */
void thinjit_resident_runtime_dispose(thinjitResidentRuntimeRef runtime);

/** thinjit's transform on the caller's LLJIT's IRTransformLayer. */
typedef struct thinjitOpaqueIRTransform *thinjitIRTransformRef;

/**
 * Installs thinjit's transform on `jit`'s IRTransformLayer (LLVMOrcIRTransformLayerSetTransform; it replaces
 * a transform set before): every module ORC materializes from now on is imported into (`summary`, `config`
 * copied, NULL for the defaults) and optimized at `level` (a thinjitOptLevel) on the materializing thread,
 * inside ORC, without changing what the module's MaterializationResponsibility covers. A module the import
 * refuses fails to materialize (the lookup fails with the message). Modules thinjit's runtime adds pass
 * through. Reports of each module are kept (thinjit_ir_transform_report). `jit` is borrowed and must outlive
 * the transform handle: dispose the handle after LLVMOrcDisposeLLJIT.
 */
thinjitErrorRef thinjit_ir_transform_install(LLVMOrcLLJITRef jit, thinjitSummaryRef summary,
                                             thinjitConfigRef config, int level, thinjitIRTransformRef *out);

/** Number of modules the transform imported and optimized so far. */
thinjitErrorRef thinjit_ir_transform_report_count(thinjitIRTransformRef transform, size_t *out);

/** A copy of the report of the `index`-th module (in materialization order); *out owned by the caller. */
thinjitErrorRef thinjit_ir_transform_report(thinjitIRTransformRef transform, size_t index,
                                            thinjitReportRef *out);

/** Number of modules the transform refused (their materialization failed). */
thinjitErrorRef thinjit_ir_transform_failure_count(thinjitIRTransformRef transform, size_t *out);

/** Frees the transform's state. Only after the LLJIT it was installed on has been disposed. NULL is ignored. */
void thinjit_ir_transform_dispose(thinjitIRTransformRef transform);

/* ---------------------------------------------------------------------------------------------------------
 * The checked compiler: code generation errors as failed materializations
 *
 * LLJIT's default IR compiler ignores error-severity diagnostics of the backend (an unsupported construct
 * such as a `double` return from a function with `"target-features"="-sse,-sse2"`, inline asm that does not
 * assemble, an impossible asm constraint): they go to the LLVMContext's diagnostic handler — LLVM's default
 * one prints and exits the process — or, with a handler that only records, the object compiled from the
 * broken code is linked and runs. thinjit's transform optimizes inside ORC but code generation happens after
 * it, in the LLJIT's IRCompileLayer, whose compiler is fixed when the LLJIT is created: so the checked compiler
 * is installed on the LLJIT *builder*, before LLVMOrcCreateLLJIT.
 * ------------------------------------------------------------------------------------------------------- */

/** The code generation failures of an LLJIT built with thinjit's checked compiler. */
typedef struct thinjitOpaqueCheckedCompiler *thinjitCheckedCompilerRef;

/**
 * Makes the LLJIT that `builder` (borrowed; an LLVMOrcLLJITBuilderRef not yet passed to LLVMOrcCreateLLJIT)
 * creates compile IR modules through thinjit's checked compiler (LLJITBuilder::setCompileFunctionCreator; it
 * replaces a compile function creator set before). A module whose code generation raises an error-severity
 * diagnostic fails its materialization: the lookup that triggered it returns an LLVMErrorRef naming the
 * module and LLVM's message, nothing of the module is linked, the process and the LLJIT carry on. The
 * compiler uses one target machine from the builder's JITTargetMachineBuilder (the host's when none is set)
 * and compiles one module at a time. Each failure is also kept in *out (thinjit_checked_compiler_failure).
 * *out is owned by the caller; it and the LLJIT share the failure list, so either may be disposed first.
 * From C++: `reinterpret_cast<LLVMOrcLLJITBuilderRef>(&builder)` for an `llvm::orc::LLJITBuilder builder`.
 */
thinjitErrorRef thinjit_lljit_builder_use_checked_compiler(LLVMOrcLLJITBuilderRef builder,
                                                           thinjitCheckedCompilerRef *out);

/** Number of code generation failures so far. */
thinjitErrorRef thinjit_checked_compiler_failure_count(thinjitCheckedCompilerRef compiler, size_t *out);

/**
 * The `index`-th failure (oldest first): the module's name, the function LLVM named (*function = NULL when it
 * did not say), and LLVM's message. Each out-pointer may be NULL (not wanted); the strings are owned by the
 * caller (thinjit_string_dispose).
 */
thinjitErrorRef thinjit_checked_compiler_failure(thinjitCheckedCompilerRef compiler, size_t index, char **module,
                                                 char **function, char **message);

/** Frees the handle (the LLJIT's compiler keeps working). NULL is ignored. */
void thinjit_checked_compiler_dispose(thinjitCheckedCompilerRef compiler);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* THINJIT_H */
