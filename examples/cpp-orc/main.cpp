// cpp-orc: a C++17 JIT on llvm::orc::LLJIT, written the way the seed's author writes theirs (LLJITBuilder, its
// own ThreadSafeContext per script, IR parsed in that context), that lets thinjit inline its C/C++ helper
// runtime into the scripts.
//
//   cpp-orc SUMMARY eager [HELPERS_SO]   import + optimize each module with thinjit, then addIRModule
//   cpp-orc SUMMARY orc   [HELPERS_SO]   install thinjit's transform on the IRTransformLayer, then
//                                         addIRModule + lookup: import + optimize happen inside ORC
//
// Without HELPERS_SO the helper runtime is JIT-resident: thinjit adds the summary's runtime (its precompiled
// object) to this LLJIT's main JITDylib, runs its constructors once, and its destructors at dispose. With
// HELPERS_SO the helpers are that native shared library (host-native mode).
// Prints `key: value` lines and the import report (the test suite reads them).
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IRReader/IRReader.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include "thinjit.h"

using namespace llvm;
using namespace llvm::orc;

namespace {

// The seed's script, plus a function that bumps the helpers' shared counter.
const char *kSeedIR = R"(
declare ptr @CreateWrappedValueFromInt(i32) local_unnamed_addr
declare i64 @rt_counter_increment()

define noundef i32 @f_() local_unnamed_addr {
  ret i32 23333
}

define ptr @f_WRAPPED(ptr nocapture readnone %0, ptr nocapture readnone %1) local_unnamed_addr {
  %3 = tail call ptr @CreateWrappedValueFromInt(i32 23333)
  ret ptr %3
}

define i64 @bump_a() {
  %r = call i64 @rt_counter_increment()
  ret i64 %r
}
)";

// A second script, in its own context: the same counter from another module.
const char *kSecondIR = R"(
declare i64 @rt_counter_increment()
define i64 @bump_b() {
  %r = call i64 @rt_counter_increment()
  ret i64 %r
}
)";

// The boxed value CreateWrappedValueFromInt returns (helpers/include/wrapped_value.h).
struct WrappedValue {
    int32_t tag;
    int32_t pad;
    union {
        int32_t i;
        double d;
        const char *s;
    } as;
};

ExitOnError ExitOnErr;

// The host callbacks the helper runtime calls (helpers/include/thinjit_host.h), as this program implements them.
int32_t g_events[8];
extern "C" void *host_alloc(size_t n) { return std::malloc(n); }
extern "C" void host_free(void *p) { std::free(p); }
extern "C" void host_log(const char *msg) { std::fprintf(stderr, "helper: %s\n", msg); }
extern "C" void host_event(int32_t code) {
    if (code >= 0 && code < 8)
        g_events[code]++;
}

// thinjit errors are values: print the message and stop.
void check(thinjitErrorRef err, const char *what) {
    if (err == nullptr)
        return;
    std::fprintf(stderr, "error: %s: %s\n", what, thinjit_error_message(err));
    thinjit_error_dispose(err);
    std::exit(1);
}

// The script parsed in its own context.
ThreadSafeModule parseScript(const char *ir, const char *name) {
    auto ctx = std::make_unique<LLVMContext>();
    SMDiagnostic diag;
    std::unique_ptr<Module> m = parseIR(MemoryBufferRef(ir, name), diag, *ctx);
    if (!m) {
        diag.print(name, errs());
        std::exit(1);
    }
    return ThreadSafeModule(std::move(m), std::move(ctx));
}

// Calls to `callee` left in `fn`.
int countCalls(const Module &m, const char *fn, const char *callee) {
    const Function *f = m.getFunction(fn);
    if (f == nullptr)
        return -1;
    int n = 0;
    for (const BasicBlock &bb : *f)
        for (const Instruction &i : bb)
            if (auto *call = dyn_cast<CallBase>(&i))
                if (const Function *target = call->getCalledFunction())
                    n += target->getName() == callee;
    return n;
}

void printReport(thinjitReportRef report) {
    thinjitReportEntry entry;
    int found = 0;
    check(thinjit_report_find(report, "CreateWrappedValueFromInt", &entry, &found), "report_find");
    std::printf("CreateWrappedValueFromInt: %s\n", found && entry.imported ? "imported" : "not imported");
    char *text = nullptr;
    check(thinjit_report_to_text(report, &text), "report_to_text");
    std::printf("%s\n", text);
    thinjit_string_dispose(text);
}

} // namespace

int main(int argc, char **argv) {
    bool eager = argc >= 3 && std::strcmp(argv[2], "eager") == 0;
    bool orc = argc >= 3 && std::strcmp(argv[2], "orc") == 0;
    if ((argc != 3 && argc != 4) || !(eager || orc)) {
        std::fprintf(stderr, "usage: %s SUMMARY (eager | orc) [HELPERS_SO]\n", argv[0]);
        return 2;
    }
    const char *helpers_so = argc == 4 ? argv[3] : nullptr;
    InitializeNativeTarget();
    InitializeNativeTargetAsmPrinter();

    // thinjit's checked compiler: a module the backend reports an error diagnostic for fails its lookup instead
    // of ending the process (LLVM's default diagnostic handler) or running mis-compiled.
    LLJITBuilder builder;
    thinjitCheckedCompilerRef compiler = nullptr;
    check(thinjit_lljit_builder_use_checked_compiler(reinterpret_cast<LLVMOrcLLJITBuilderRef>(&builder), &compiler),
          "use_checked_compiler");
    auto J = ExitOnErr(builder.create());
    // LLVM's own C bindings convert this way (OrcV2CBindings.cpp).
    auto *jit = reinterpret_cast<LLVMOrcLLJITRef>(J.get());
    thinjitSummaryRef summary = nullptr;
    check(thinjit_summary_load(argv[1], &summary), "summary_load");
    thinjitConfigRef config = nullptr;
    check(thinjit_config_create(&config), "config_create");

    thinjitResidentRuntimeRef runtime = nullptr;
    if (helpers_so != nullptr) {
        // Host-native: the helpers run from their shared library; thinjit imports bodies for inlining.
        check(thinjit_config_set(config, "runtime-mode", "host-native"), "config_set");
        J->getMainJITDylib().addGenerator(
            ExitOnErr(DynamicLibrarySearchGenerator::Load(helpers_so, J->getDataLayout().getGlobalPrefix())));
    } else {
        // JIT-resident: the helper runtime once in this LLJIT, constructors run now.
        thinjitHostSymbol host[] = {
            {"thinjit_host_alloc", reinterpret_cast<uint64_t>(&host_alloc)},
            {"thinjit_host_free", reinterpret_cast<uint64_t>(&host_free)},
            {"thinjit_host_log", reinterpret_cast<uint64_t>(&host_log)},
            {"thinjit_host_event", reinterpret_cast<uint64_t>(&host_event)},
        };
        check(thinjit_resident_runtime_install(jit, nullptr, summary, host, 4, 1, &runtime), "runtime_install");
        int source = 0;
        check(thinjit_resident_runtime_source(runtime, &source), "runtime_source");
        std::printf("runtime: %s\n", source == 1 ? "object" : "bitcode");
    }

    thinjitIRTransformRef transform = nullptr;
    if (orc)
        check(thinjit_ir_transform_install(jit, summary, config, THINJIT_OPT_O3, &transform), "transform_install");

    thinjitReportRef report = nullptr;
    for (const auto &script : {std::pair{kSeedIR, "seed"}, std::pair{kSecondIR, "second"}}) {
        const char *name = script.second;
        ThreadSafeModule tsm = parseScript(script.first, name);
        if (eager) {
            // Eager: import + optimize in the module's own context, then hand it to ORC as usual.
            tsm.withModuleDo([&](Module &m) {
                thinjitReportRef r = nullptr;
                check(thinjit_import(wrap(&m), summary, config, &r), "import");
                check(thinjit_optimize(wrap(&m), THINJIT_OPT_O3, r), "optimize");
                if (std::strcmp(name, "seed") == 0) {
                    std::printf("calls_after_o3: %d\n", countCalls(m, "f_WRAPPED", "CreateWrappedValueFromInt"));
                    report = r;
                } else {
                    thinjit_report_dispose(r);
                }
            });
        }
        ExitOnErr(J->addIRModule(std::move(tsm)));
    }

    auto f = ExitOnErr(J->lookup("f_WRAPPED")).toPtr<WrappedValue *(void *, void *)>();
    WrappedValue *v = f(nullptr, nullptr);
    auto bump_a = ExitOnErr(J->lookup("bump_a")).toPtr<int64_t()>();
    auto bump_b = ExitOnErr(J->lookup("bump_b")).toPtr<int64_t()>();
    if (orc) {
        // Inside ORC: the transform's reports, one per materialized module.
        size_t count = 0;
        check(thinjit_ir_transform_report_count(transform, &count), "report_count");
        std::printf("transform_reports: %zu\n", count);
        for (size_t i = 0; i < count; i++) {
            thinjitReportRef r = nullptr;
            check(thinjit_ir_transform_report(transform, i, &r), "transform_report");
            const char *module = nullptr;
            check(thinjit_report_module(r, &module), "report_module");
            if (std::strcmp(module, "seed") == 0 && report == nullptr) {
                report = r;
            } else {
                thinjit_report_dispose(r);
            }
        }
        thinjitReportEntry entry;
        int found = 0;
        check(thinjit_report_find(report, "CreateWrappedValueFromInt", &entry, &found), "report_find");
        std::printf("calls_after_o3: %lld\n", found ? static_cast<long long>(entry.calls_after_optimize) : -1LL);
    }
    printReport(report);
    thinjit_report_dispose(report);

    std::printf("f_WRAPPED: tag %d value %d\n", v->tag, v->as.i);
    auto get = ExitOnErr(J->lookup("rt_counter_get")).toPtr<int64_t()>();
    int64_t a = bump_a(), b = bump_b();
    auto *shared = ExitOnErr(J->lookup("rt_shared_counter")).toPtr<int64_t *>();
    std::printf("counter: a=%" PRId64 " b=%" PRId64 " get=%" PRId64 " shared=%" PRId64 "\n", a, b, get(),
                *shared);

    if (runtime != nullptr) {
        auto ctor_runs = ExitOnErr(J->lookup("rt_intern_ctor_runs")).toPtr<int32_t()>();
        std::printf("intern_ctor_runs: %d\n", ctor_runs());
        std::printf("events_before_dispose: ctor=%d dtor=%d\n", g_events[1], g_events[2]);
        thinjit_resident_runtime_dispose(runtime); // destructors run here, while the JIT still holds the code
        std::printf("events_after_dispose: ctor=%d dtor=%d\n", g_events[1], g_events[2]);
    }
    thinjit_config_dispose(config);
    thinjit_summary_dispose(summary);
    J.reset();
    thinjit_ir_transform_dispose(transform); // after the LLJIT it was installed on
    thinjit_checked_compiler_dispose(compiler);
    std::printf("done\n");
    return 0;
}
