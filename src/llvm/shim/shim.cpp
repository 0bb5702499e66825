// thinjit's C++ shim: the few LLVM 19 entry points the C API lacks. Each function names the gap it fills.
// Compiled by build.rs against `llvm-config --cxxflags`; called only from src/llvm/.

#include "llvm-c/Core.h"
#include "llvm-c/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/GlobalValue.h"
#include "llvm/IR/Module.h"

using namespace llvm;

extern "C" {

// Gap: llvm-c has no setter (or getter) for `dso_local`. Declarations copied out of a helper library must not
// claim `dso_local`: JIT'd code and its targets may be far apart in memory.
int thinjit_is_dso_local(LLVMValueRef gv) { return unwrap<GlobalValue>(gv)->isDSOLocal() ? 1 : 0; }

void thinjit_set_dso_local(LLVMValueRef gv, int dso_local) { unwrap<GlobalValue>(gv)->setDSOLocal(dso_local != 0); }

// Gap: llvm-c cannot stop an LLJITBuilder from resolving JIT'd code against every symbol of the host process
// (its default "<Process Symbols>" JITDylib searches the whole process); thinjit makes process symbols opt-in.
// LLJIT's default platform setup requires a process-symbols JITDylib to exist, so give it an empty one
// (`setProcessSymbolsJITDylibSetup`); symbol sources are then added to the main JITDylib explicitly. The C
// API's builder handle is an `LLJITBuilder*` (OrcV2CBindings.cpp: DEFINE_SIMPLE_CONVERSION_FUNCTIONS).
void thinjit_lljit_builder_use_empty_process_symbols(LLVMOrcLLJITBuilderRef builder) {
    reinterpret_cast<orc::LLJITBuilder *>(builder)->setProcessSymbolsJITDylibSetup(
        [](orc::LLJIT &J) -> Expected<orc::JITDylibSP> {
            return &J.getExecutionSession().createBareJITDylib("<Process Symbols>");
        });
}

}  // extern "C"
