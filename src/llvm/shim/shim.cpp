// thinjit's C++ shim: the few LLVM 19 entry points the C API lacks. Each function names the gap it fills.
// Compiled by build.rs against `llvm-config --cxxflags`; called only from src/llvm/.

#include "llvm-c/Core.h"
#include "llvm-c/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/Core.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/Shared/OrcError.h"
#include "llvm-c/Error.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Analysis/BlockFrequencyInfo.h"
#include "llvm/Analysis/BranchProbabilityInfo.h"
#include "llvm/Analysis/LoopInfo.h"
#include "llvm/Analysis/ProfileSummaryInfo.h"
#include "llvm/IR/Dominators.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/GlobalAlias.h"
#include "llvm/IR/GlobalValue.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/Module.h"
#include "llvm/Linker/Linker.h"
#include "llvm/Transforms/Utils/Cloning.h"
#include "llvm/Transforms/Utils/ValueMapper.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

using namespace llvm;

namespace {

// True if the constant `c` contains a `blockaddress`, looking through constant expressions and aggregates but not
// into other globals' initializers.
bool containsBlockAddress(const Constant *c, SmallPtrSetImpl<const Constant *> &seen) {
  if (isa<BlockAddress>(c)) return true;
  if (isa<GlobalValue>(c) || !seen.insert(c).second) return false;
  for (const Use &op : c->operands())
    if (auto *oc = dyn_cast<Constant>(op.get()))
      if (containsBlockAddress(oc, seen)) return true;
  return false;
}

// Whether a shard may carry `gv` as a definition: a constant with a known, non-interposable, non-thread-local
// initializer free of blockaddresses. Must match thinjit's `importable_initializer` (src/summary/analyze.rs).
bool copiesAsDefinition(const GlobalVariable &gv) {
  if (!gv.isConstant() || !gv.hasInitializer() || gv.isInterposable() || gv.isThreadLocal() ||
      gv.hasLocalLinkage() || gv.hasAvailableExternallyLinkage() || gv.hasAppendingLinkage())
    return false;
  SmallPtrSet<const Constant *, 16> seen;
  return !containsBlockAddress(gv.getInitializer(), seen);
}

// Maps every global value the cloned function (or a copied initializer) reaches to a new global in the shard:
// a declaration, or — for copyable constants when `copyConstants` — a definition whose initializer is filled in
// later (initializers are mapped outside the materializer, which must not re-enter the mapper).
class ShardMaterializer final : public ValueMaterializer {
 public:
  ShardMaterializer(Module &dst, bool copyConstants) : dst_(dst), copyConstants_(copyConstants) {}

  std::vector<std::pair<GlobalVariable *, const GlobalVariable *>> pending;

  Value *materialize(Value *v) override {
    auto *gv = dyn_cast<GlobalValue>(v);
    if (gv == nullptr) return nullptr;
    if (GlobalValue *existing = dst_.getNamedValue(gv->getName())) return existing;
    GlobalValue *out = nullptr;
    Type *valueType = gv->getValueType();
    if (auto *f = dyn_cast<Function>(gv)) {
      Function *nf = Function::Create(f->getFunctionType(), GlobalValue::ExternalLinkage, f->getAddressSpace(),
                                      f->getName(), &dst_);
      nf->setCallingConv(f->getCallingConv());
      nf->setAttributes(f->getAttributes());
      out = nf;
    } else if (auto *var = dyn_cast<GlobalVariable>(gv)) {
      auto *nv = new GlobalVariable(dst_, valueType, var->isConstant(), GlobalValue::ExternalLinkage, nullptr,
                                    var->getName(), nullptr, var->getThreadLocalMode(), var->getAddressSpace());
      nv->setAlignment(var->getAlign());
      if (copyConstants_ && copiesAsDefinition(*var)) {
        nv->setLinkage(var->getLinkage());
        nv->setUnnamedAddr(var->getUnnamedAddr());
        pending.emplace_back(nv, var);
      }
      out = nv;
    } else if (valueType->isFunctionTy()) {
      // An alias or ifunc of a function: declare a function of the same type under the alias's name.
      out = Function::Create(cast<FunctionType>(valueType), GlobalValue::ExternalLinkage, gv->getAddressSpace(),
                             gv->getName(), &dst_);
    } else {
      out = new GlobalVariable(dst_, valueType, false, GlobalValue::ExternalLinkage, nullptr, gv->getName(),
                               nullptr, gv->getThreadLocalMode(), gv->getAddressSpace());
    }
    if (gv->hasExternalWeakLinkage()) out->setLinkage(GlobalValue::ExternalWeakLinkage);
    // Declarations use default visibility and never claim dso_local: the definition may be far away.
    out->setVisibility(GlobalValue::DefaultVisibility);
    out->setDSOLocal(false);
    return out;
  }

 private:
  Module &dst_;
  bool copyConstants_;
};

}  // namespace

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

// Gap: llvm-c has no CloneFunctionInto and no way to clone part of a module. Builds a new module `name` in the
// source's context holding a copy of `fn` (same name, linkage and attributes; no comdat), declarations of every
// global it references, and definitions of the copyable constants it references (whose own references are
// declared). Cost is proportional to the function and what it references, not to the source module. Returns
// null if `fn` is a declaration. The caller verifies the result.
LLVMModuleRef thinjit_extract_function(LLVMModuleRef src, LLVMValueRef fn, const char *name) {
  Module *source = unwrap(src);
  Function *f = unwrap<Function>(fn);
  if (f->isDeclaration()) return nullptr;
  auto dst = std::make_unique<Module>(name, source->getContext());
  dst->setTargetTriple(source->getTargetTriple());
  dst->setDataLayout(source->getDataLayout());
  dst->setSourceFileName(name);
  SmallVector<Module::ModuleFlagEntry, 8> flags;
  source->getModuleFlagsMetadata(flags);
  for (const auto &flag : flags) dst->addModuleFlag(flag.Behavior, flag.Key->getString(), flag.Val);

  Function *nf = Function::Create(f->getFunctionType(), f->getLinkage(), f->getAddressSpace(), f->getName(),
                                  dst.get());
  ValueToValueMapTy vmap;
  vmap[f] = nf;
  auto nextArg = nf->arg_begin();
  for (const Argument &a : f->args()) {
    nextArg->setName(a.getName());
    vmap[&a] = &*nextArg++;
  }
  ShardMaterializer withConstants(*dst, true);
  SmallVector<ReturnInst *, 8> returns;
  CloneFunctionInto(nf, f, vmap, CloneFunctionChangeType::DifferentModule, returns, "", nullptr, nullptr,
                    &withConstants);
  nf->setComdat(nullptr);
  nf->setVisibility(GlobalValue::DefaultVisibility);

  ShardMaterializer declarationsOnly(*dst, false);
  for (auto &[copy, original] : withConstants.pending)
    copy->setInitializer(
        MapValue(original->getInitializer(), vmap, RF_None, nullptr, &declarationsOnly));
  // CloneFunctionInto creates `!llvm.dbg.cu` even when there is no debug info. An empty one makes every later
  // read of the shard run StripDebugInfo over the module and emit an "invalid debug info version" warning.
  if (NamedMDNode *cus = dst->getNamedMetadata("llvm.dbg.cu"))
    if (cus->getNumOperands() == 0) dst->eraseNamedMetadata(cus);
  return wrap(dst.release());
}

// Gap: LLVMLinkModules2 builds a new Linker (and its IRMover, which walks every type of the destination) per
// call, so linking n shards one by one costs O(n * destination). Links `srcs[0..n)` into `dst` with one Linker.
// Takes ownership of every source module whatever the outcome. Returns n on success, else the index of the
// source that failed (its error went to the context's diagnostic handler; later sources are not linked).
size_t thinjit_link_modules(LLVMModuleRef dst, LLVMModuleRef *srcs, size_t n) {
  std::vector<std::unique_ptr<Module>> owned;
  owned.reserve(n);
  for (size_t i = 0; i < n; ++i) owned.emplace_back(unwrap(srcs[i]));
  Linker linker(*unwrap(dst));
  for (size_t i = 0; i < n; ++i)
    if (linker.linkInModule(std::move(owned[i]))) return i;
  return n;
}

// Gap: llvm-c cannot materialize one function of a lazily loaded module. Reads `gv`'s body from the module's
// bitcode if it is not loaded yet. Returns null on success, else a message (LLVMCreateMessage) the caller frees with
// LLVMDisposeMessage.
char *thinjit_materialize(LLVMValueRef gv) {
  if (Error err = unwrap<GlobalValue>(gv)->materialize()) return LLVMCreateMessage(toString(std::move(err)).c_str());
  return nullptr;
}

// Gap: llvm-c has no profile analyses. Writes, for each call-like instruction of `fn` in order (up to `cap`), the
// hotness LLVM's ModuleSummaryAnalysis gives its edge: ProfileSummaryInfo::getProfileCount (the call's own `!prof`
// total weight under a sample profile, else its block's BlockFrequencyInfo count), classified by isHotCount /
// isColdCount (0 = unknown, 1 = cold, 2 = none, 3 = hot). Returns the number of call sites, or 0 without touching `out` when
// the module has no ProfileSummary (every edge is then unknown, as in LLVM).
size_t thinjit_call_profile_hotness(LLVMValueRef fn, int *out, size_t cap) {
  Function *f = unwrap<Function>(fn);
  if (f->isDeclaration()) return 0;
  ProfileSummaryInfo psi(*f->getParent());
  if (!psi.hasProfileSummary()) return 0;
  DominatorTree dt(*f);
  LoopInfo li(dt);
  BranchProbabilityInfo bpi(*f, li);
  BlockFrequencyInfo bfi(*f, bpi, li);
  size_t n = 0;
  for (BasicBlock &bb : *f)
    for (Instruction &inst : bb) {
      auto *call = dyn_cast<CallBase>(&inst);
      if (call == nullptr) continue;
      int hotness = 0;
      // getProfileCount takes calls and invokes only; a callbr edge stays unknown.
      std::optional<uint64_t> count;
      if (isa<CallInst>(call) || isa<InvokeInst>(call)) count = psi.getProfileCount(*call, &bfi);
      if (count) {
        hotness = psi.isHotCount(*count) ? 3 : psi.isColdCount(*count) ? 1 : 2;
      }
      if (n < cap) out[n] = hotness;
      ++n;
    }
  return n;
}

// Kinds of ORC error thinjit tells apart; mirrored by `OrcErrorKind` in src/llvm/orc.rs.
enum class ThinjitOrcErrorKind : int {
  Other = 0,
  SymbolsNotFound = 1,
  SymbolsCouldNotBeRemoved = 2,
  DuplicateDefinition = 3,
  FailedToMaterialize = 4,
  MissingSymbolDefinitions = 5,
  UnexpectedSymbolDefinitions = 6,
  ResourceTrackerDefunct = 7,
};

typedef void (*ThinjitOrcErrorVisitor)(void *ctx, ThinjitOrcErrorKind kind, const char *message,
                                       const char *const *symbols, size_t count);

// Gap: llvm-c turns an ORC error into text only (LLVMGetErrorMessage), so which symbols were missing, clashing
// or failed could only be recovered by parsing English. Consumes `err` (null is success: nothing is visited)
// and calls `visit` once per error it holds (an ErrorList holds several), with its kind, its message and the
// symbol names it carries (FailedToMaterialize: every JITDylib's failed symbols). The strings are valid only
// during the call.
void thinjit_visit_orc_error(LLVMErrorRef err, ThinjitOrcErrorVisitor visit, void *ctx) {
  if (err == nullptr) return;
  auto report = [&](ThinjitOrcErrorKind kind, const ErrorInfoBase &info, std::vector<std::string> names) {
    std::string message = info.message();
    std::vector<const char *> ptrs;
    ptrs.reserve(names.size());
    for (const std::string &n : names) ptrs.push_back(n.c_str());
    visit(ctx, kind, message.c_str(), ptrs.data(), ptrs.size());
  };
  auto names = [](const auto &symbols) {
    std::vector<std::string> out;
    for (const orc::SymbolStringPtr &s : symbols) out.emplace_back((*s).str());
    return out;
  };
  handleAllErrors(
      unwrap(err),
      [&](const orc::SymbolsNotFound &e) { report(ThinjitOrcErrorKind::SymbolsNotFound, e, names(e.getSymbols())); },
      [&](const orc::SymbolsCouldNotBeRemoved &e) {
        report(ThinjitOrcErrorKind::SymbolsCouldNotBeRemoved, e, names(e.getSymbols()));
      },
      [&](const orc::DuplicateDefinition &e) {
        report(ThinjitOrcErrorKind::DuplicateDefinition, e, {e.getSymbolName()});
      },
      [&](const orc::FailedToMaterialize &e) {
        std::vector<std::string> out;
        for (const auto &[dylib, symbols] : e.getSymbols())
          for (const orc::SymbolStringPtr &s : symbols) out.emplace_back((*s).str());
        report(ThinjitOrcErrorKind::FailedToMaterialize, e, std::move(out));
      },
      [&](const orc::MissingSymbolDefinitions &e) {
        report(ThinjitOrcErrorKind::MissingSymbolDefinitions, e, names(e.getSymbols()));
      },
      [&](const orc::UnexpectedSymbolDefinitions &e) {
        report(ThinjitOrcErrorKind::UnexpectedSymbolDefinitions, e, names(e.getSymbols()));
      },
      [&](const orc::ResourceTrackerDefunct &e) { report(ThinjitOrcErrorKind::ResourceTrackerDefunct, e, {}); },
      [&](const ErrorInfoBase &e) { report(ThinjitOrcErrorKind::Other, e, {}); });
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// Gap: `LLVMTargetMachineEmitToMemoryBuffer` builds the whole code generation pass pipeline (about 150 passes, an
// MC streamer and object writer) for every module and drops it after. A pipeline built once per target machine
// and run on one module after another gives byte-identical objects and saves that construction. Same passes as
// the C API: `addPassesToEmitFile(..., CodeGenFileType::ObjectFile)` after setting the module's data layout.
// ---------------------------------------------------------------------------------------------------------------

#include "llvm-c/TargetMachine.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"

namespace {
struct ThinjitCodegen {
  llvm::legacy::PassManager pm;
  llvm::SmallVector<char, 0> object;
  llvm::raw_svector_ostream out{object};
};
}  // namespace

extern "C" void *thinjit_codegen_create(LLVMTargetMachineRef tm) {
  auto *machine = reinterpret_cast<llvm::TargetMachine *>(tm);
  auto *codegen = new ThinjitCodegen();
  if (machine->addPassesToEmitFile(codegen->pm, codegen->out, nullptr, llvm::CodeGenFileType::ObjectFile)) {
    delete codegen;
    return nullptr;
  }
  return codegen;
}

// Compiles `m` to an object with the pipeline of `codegen` (made for `tm`); the object's bytes are copied into a
// new memory buffer the caller owns.
extern "C" LLVMMemoryBufferRef thinjit_codegen_run(void *codegen, LLVMTargetMachineRef tm, LLVMModuleRef m) {
  auto *c = static_cast<ThinjitCodegen *>(codegen);
  llvm::Module *mod = llvm::unwrap(m);
  mod->setDataLayout(reinterpret_cast<llvm::TargetMachine *>(tm)->createDataLayout());
  c->object.clear();
  c->pm.run(*mod);
  return LLVMCreateMemoryBufferWithMemoryRangeCopy(c->object.data(), c->object.size(), "");
}

extern "C" void thinjit_codegen_dispose(void *codegen) { delete static_cast<ThinjitCodegen *>(codegen); }
