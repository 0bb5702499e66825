// thinjit's C++ shim: the few LLVM 19 entry points the C API lacks. Each function names the gap it fills.
// Compiled by build.rs against `llvm-config --cxxflags`; called only from src/llvm/.

#include "llvm-c/Core.h"
#include "llvm/IR/GlobalValue.h"
#include "llvm/IR/Module.h"

using namespace llvm;

extern "C" {

// Gap: llvm-c has no setter (or getter) for `dso_local`. Declarations copied out of a helper library must not
// claim `dso_local`: JIT'd code and its targets may be far apart in memory.
int thinjit_is_dso_local(LLVMValueRef gv) { return unwrap<GlobalValue>(gv)->isDSOLocal() ? 1 : 0; }

void thinjit_set_dso_local(LLVMValueRef gv, int dso_local) { unwrap<GlobalValue>(gv)->setDSOLocal(dso_local != 0); }

}  // extern "C"
