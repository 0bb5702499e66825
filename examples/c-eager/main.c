/*
 * c-eager: a C JIT on LLVM-C's LLJIT that lets thinjit import helper bodies into its modules before adding
 * them (the eager variant). Plain C99, LLVM-C and thinjit.h only.
 *
 *   c-eager SUMMARY HELPERS_SO      host-native: the helpers are the native shared library HELPERS_SO
 *   c-eager SUMMARY --resident      JIT-resident: thinjit adds the summary's helper runtime to this LLJIT
 *
 * It parses the seed's script in its own context, imports + optimizes it with thinjit, adds it to its LLJIT,
 * calls f_WRAPPED, and prints what happened as `key: value` lines (the test suite reads them).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/IRReader.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>

#include "thinjit.h"

/* The seed's script, as its front end emits it, plus a function that bumps the helpers' shared counter. */
static const char SEED_IR[] =
    "declare ptr @CreateWrappedValueFromInt(i32) local_unnamed_addr\n"
    "declare i64 @rt_counter_increment()\n"
    "define noundef i32 @f_() local_unnamed_addr {\n"
    "  ret i32 23333\n"
    "}\n"
    "define ptr @f_WRAPPED(ptr nocapture readnone %0, ptr nocapture readnone %1) local_unnamed_addr {\n"
    "  %3 = tail call ptr @CreateWrappedValueFromInt(i32 23333)\n"
    "  ret ptr %3\n"
    "}\n"
    "define i64 @bump_a() {\n"
    "  %r = call i64 @rt_counter_increment()\n"
    "  ret i64 %r\n"
    "}\n";

/* A second script: the same counter, from another module. */
static const char SECOND_IR[] = "declare i64 @rt_counter_increment()\n"
                                "define i64 @bump_b() {\n"
                                "  %r = call i64 @rt_counter_increment()\n"
                                "  ret i64 %r\n"
                                "}\n";

/* The boxed value CreateWrappedValueFromInt returns (helpers/include/wrapped_value.h). */
typedef struct {
    int32_t tag;
    int32_t pad;
    union {
        int32_t i;
        double d;
        const char *s;
    } as;
} WrappedValue;

/* The host callbacks the helper runtime calls (helpers/include/thinjit_host.h), as this program implements them. */
static int events[8];
static void *host_alloc(size_t n) { return malloc(n); }
static void host_free(void *p) { free(p); }
static void host_log(const char *msg) { fprintf(stderr, "helper: %s\n", msg); }
static void host_event(int32_t code) {
    if (code >= 0 && code < 8)
        events[code]++;
}

static void die_thinjit(const char *what, thinjitErrorRef err) {
    fprintf(stderr, "error: %s: %s\n", what, thinjit_error_message(err));
    thinjit_error_dispose(err);
    exit(1);
}

static void die_llvm(const char *what, LLVMErrorRef err) {
    char *msg = LLVMGetErrorMessage(err);
    fprintf(stderr, "error: %s: %s\n", what, msg);
    LLVMDisposeErrorMessage(msg);
    exit(1);
}

/* Calls to `callee` left in `module`'s function `fn`. */
static int count_calls(LLVMModuleRef module, const char *fn, const char *callee) {
    int n = 0;
    LLVMValueRef f = LLVMGetNamedFunction(module, fn);
    if (f == NULL)
        return -1;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb)) {
        for (LLVMValueRef i = LLVMGetFirstInstruction(bb); i; i = LLVMGetNextInstruction(i)) {
            if (LLVMIsACallInst(i) == NULL)
                continue;
            LLVMValueRef target = LLVMGetCalledValue(i);
            size_t len = 0;
            const char *name = LLVMGetValueName2(target, &len);
            if (name != NULL && strcmp(name, callee) == 0)
                n++;
        }
    }
    return n;
}

/* Parses IR into the thread-safe context's LLVMContext. */
static LLVMModuleRef parse(LLVMContextRef ctx, const char *ir, const char *name) {
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(ir, strlen(ir), name);
    LLVMModuleRef module = NULL;
    char *msg = NULL;
    if (LLVMParseIRInContext(ctx, buf, &module, &msg)) {
        fprintf(stderr, "error: parsing %s: %s\n", name, msg);
        LLVMDisposeMessage(msg);
        exit(1);
    }
    return module;
}

/* Imports + optimizes `module`, then hands it to the JIT. Returns the report (caller disposes). */
static thinjitReportRef import_and_add(LLVMOrcLLJITRef jit, LLVMOrcThreadSafeContextRef tsc,
                                       LLVMModuleRef module, thinjitSummaryRef summary,
                                       thinjitConfigRef config, int print) {
    thinjitReportRef report = NULL;
    thinjitErrorRef err = thinjit_import(module, summary, config, &report);
    if (err)
        die_thinjit("thinjit_import", err);
    if ((err = thinjit_optimize(module, THINJIT_OPT_O3, report)))
        die_thinjit("thinjit_optimize", err);
    if (print) {
        printf("calls_after_o3: %d\n", count_calls(module, "f_WRAPPED", "CreateWrappedValueFromInt"));
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(module, tsc);
    LLVMErrorRef lerr = LLVMOrcLLJITAddLLVMIRModule(jit, LLVMOrcLLJITGetMainJITDylib(jit), tsm);
    if (lerr)
        die_llvm("adding the module", lerr);
    return report;
}

static LLVMOrcExecutorAddress lookup(LLVMOrcLLJITRef jit, const char *name) {
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef err = LLVMOrcLLJITLookup(jit, &addr, name);
    if (err)
        die_llvm(name, err);
    return addr;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SUMMARY (HELPERS_SO | --resident)\n", argv[0]);
        return 2;
    }
    int resident = strcmp(argv[2], "--resident") == 0;
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();

    /* The caller's own LLJIT (process symbols linked, as LLJITBuilder does by default). */
    LLVMOrcLLJITRef jit = NULL;
    LLVMErrorRef lerr = LLVMOrcCreateLLJIT(&jit, LLVMOrcCreateLLJITBuilder());
    if (lerr)
        die_llvm("creating the LLJIT", lerr);

    thinjitSummaryRef summary = NULL;
    thinjitErrorRef err = thinjit_summary_load(argv[1], &summary);
    if (err)
        die_thinjit("thinjit_summary_load", err);
    thinjitConfigRef config = NULL;
    if ((err = thinjit_config_create(&config)))
        die_thinjit("thinjit_config_create", err);

    thinjitResidentRuntimeRef runtime = NULL;
    if (resident) {
        /* JIT-resident: the helper runtime once in this LLJIT's main JITDylib; its constructors run now. */
        thinjitHostSymbol host[] = {
            {"thinjit_host_alloc", (uint64_t)(uintptr_t)&host_alloc},
            {"thinjit_host_free", (uint64_t)(uintptr_t)&host_free},
            {"thinjit_host_log", (uint64_t)(uintptr_t)&host_log},
            {"thinjit_host_event", (uint64_t)(uintptr_t)&host_event},
        };
        if ((err = thinjit_resident_runtime_install(jit, NULL, summary, host, 4, 1, &runtime)))
            die_thinjit("thinjit_resident_runtime_install", err);
    } else {
        /* Host-native: the helpers run from their native shared library; thinjit imports bodies to inline. */
        if ((err = thinjit_config_set(config, "runtime-mode", "host-native")))
            die_thinjit("thinjit_config_set", err);
        LLVMOrcDefinitionGeneratorRef gen = NULL;
        lerr = LLVMOrcCreateDynamicLibrarySearchGeneratorForPath(&gen, argv[2], LLVMOrcLLJITGetGlobalPrefix(jit),
                                                                 NULL, NULL);
        if (lerr)
            die_llvm("loading the helpers' shared library", lerr);
        LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(jit), gen);
    }

    /* Each script in its own context (ORC's ThreadSafeContext), as ORC recommends. */
    LLVMOrcThreadSafeContextRef tsc_a = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef seed = parse(LLVMOrcThreadSafeContextGetContext(tsc_a), SEED_IR, "seed");
    thinjitReportRef report = import_and_add(jit, tsc_a, seed, summary, config, 1);
    LLVMOrcThreadSafeContextRef tsc_b = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef second = parse(LLVMOrcThreadSafeContextGetContext(tsc_b), SECOND_IR, "second");
    thinjitReportRef report_b = import_and_add(jit, tsc_b, second, summary, config, 0);

    thinjitReportEntry entry;
    int found = 0;
    if ((err = thinjit_report_find(report, "CreateWrappedValueFromInt", &entry, &found)))
        die_thinjit("thinjit_report_find", err);
    printf("CreateWrappedValueFromInt: %s\n", found && entry.imported ? "imported" : "not imported");
    thinjitReportTotals totals;
    if ((err = thinjit_report_totals(report, &totals)))
        die_thinjit("thinjit_report_totals", err);
    printf("imported_functions: %llu\n", (unsigned long long)totals.imported_functions);
    char *text = NULL;
    if ((err = thinjit_report_to_text(report, &text)))
        die_thinjit("thinjit_report_to_text", err);
    printf("%s%s", text, text[0] != '\0' && text[strlen(text) - 1] == '\n' ? "" : "\n");
    thinjit_string_dispose(text);

    typedef WrappedValue *(*wrapped_fn)(void *, void *);
    typedef int64_t (*counter_fn)(void);
    wrapped_fn f_wrapped = (wrapped_fn)(uintptr_t)lookup(jit, "f_WRAPPED");
    WrappedValue *v = f_wrapped(NULL, NULL);
    printf("f_WRAPPED: tag %d value %d\n", (int)v->tag, (int)v->as.i);
    counter_fn bump_a = (counter_fn)(uintptr_t)lookup(jit, "bump_a");
    counter_fn bump_b = (counter_fn)(uintptr_t)lookup(jit, "bump_b");
    counter_fn counter_get = (counter_fn)(uintptr_t)lookup(jit, "rt_counter_get");
    int64_t a = bump_a();
    int64_t b = bump_b();
    int64_t *shared = (int64_t *)(uintptr_t)lookup(jit, "rt_shared_counter");
    printf("counter: a=%lld b=%lld get=%lld shared=%lld\n", (long long)a, (long long)b,
           (long long)counter_get(), (long long)*shared);

    if (runtime != NULL) {
        printf("events_before_dispose: ctor=%d dtor=%d\n", events[1], events[2]);
        thinjit_resident_runtime_dispose(runtime); /* destructors, while the LLJIT still holds their code */
        printf("events_after_dispose: ctor=%d dtor=%d\n", events[1], events[2]);
    }
    thinjit_report_dispose(report);
    thinjit_report_dispose(report_b);
    thinjit_config_dispose(config);
    thinjit_summary_dispose(summary);
    LLVMOrcDisposeThreadSafeContext(tsc_a);
    LLVMOrcDisposeThreadSafeContext(tsc_b);
    if ((lerr = LLVMOrcDisposeLLJIT(jit)))
        die_llvm("disposing the LLJIT", lerr);
    printf("done\n");
    return 0;
}
