// thinjit's C++ shim, part 2: what the C API cannot tell about a module before code generation, and code
// generation whose error diagnostics come back as data. Each function names the gap it fills. Policy (which
// limits, which targets) lives in Rust (src/check.rs); these functions only measure and report.
//
// Every walk here is iterative (explicit stacks, memoized): the modules measured may nest types, constants or
// metadata far deeper than the native stack allows recursion.

#include "llvm-c/Core.h"
#include "llvm-c/LLJIT.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ExecutionEngine/Orc/CompileUtils.h"
#include "llvm/ExecutionEngine/Orc/IRCompileLayer.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/DebugProgramInstruction.h"
#include "llvm/IR/DiagnosticHandler.h"
#include "llvm/IR/DiagnosticInfo.h"
#include "llvm/IR/DiagnosticPrinter.h"
#include "llvm/IR/GCStrategy.h"
#include "llvm/IR/InlineAsm.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Metadata.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace llvm;

namespace {

// Must match `FactKind` in src/llvm/facts.rs.
enum class FactKind : int {
  IntWidth = 0,         // value: widest integer type (bits); function: where
  TypeDepth = 1,        // value: deepest type nesting; UINT64_MAX for a type that contains itself
  ConstantDepth = 2,    // value: deepest constant-expression nesting
  AggregateValue = 3,   // value: most scalars in one first-class aggregate or vector value
  TypeSize = 4,         // value: largest type's size in bytes (saturating)
  Intrinsic = 5,        // detail: a declared `llvm.*` function; value: 1 if LLVM knows it as an intrinsic
  IntrinsicCall = 6,    // function: caller; detail: intrinsic called
  ScalableVector = 7,   // function: where a scalable vector type appears
  Gc = 8,               // function; detail: its `gc` strategy
  TargetCpu = 9,        // function; detail: its `target-cpu`
  TargetFeatures = 10,  // function; detail: its `target-features`
  DebugTypeCycle = 11,  // detail: a debug type whose base-type chain leads back to itself
  ThreadLocal = 12,     // detail: a thread-local variable; value: 1 if only declared
  Coroutine = 13,       // function: a defined function with `presplitcoroutine` (a coroutine before splitting)
  Immediate = 14,       // function: caller; detail: x86 intrinsic; value: operand index << 32 | low 32 bits of
                        // the `immarg` constant
  NamedRegister = 15,   // function: caller; detail: "<intrinsic> <register name>"; value: the value's bit width
};

using FactFn = void (*)(void *ctx, FactKind kind, const char *function, const char *detail, uint64_t value);

constexpr uint64_t kInProgress = UINT64_MAX - 1;
constexpr uint64_t kCycle = UINT64_MAX;

uint64_t satAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
uint64_t satMul(uint64_t a, uint64_t b) { return (a != 0 && b > UINT64_MAX / a) ? UINT64_MAX : a * b; }

// Per-type measures, computed once per type by an iterative post-order walk.
struct TypeInfo {
  uint64_t depth = 0;    // nesting depth (1 for a scalar)
  uint64_t bytes = 0;    // size without padding, saturating
  uint64_t scalars = 0;  // scalar elements when held as one value
  unsigned maxInt = 0;   // widest integer inside
  bool scalable = false;
};

class TypeMeasure {
 public:
  explicit TypeMeasure(const DataLayout &dl) : dl_(dl) {}

  const TypeInfo &measure(Type *root) {
    auto found = memo_.find(root);
    if (found != memo_.end() && found->second.depth != kInProgress) return found->second;
    SmallVector<std::pair<Type *, bool>, 32> stack;
    stack.push_back({root, false});
    while (!stack.empty()) {
      auto [t, post] = stack.pop_back_val();
      if (!post) {
        auto it = memo_.find(t);
        if (it != memo_.end()) continue;  // done, or in progress (a cycle, resolved at post time)
        memo_[t].depth = kInProgress;
        stack.push_back({t, true});
        for (Type *sub : t->subtypes())
          if (!memo_.count(sub)) stack.push_back({sub, false});
        continue;
      }
      TypeInfo info;
      uint64_t childDepth = 0;
      for (Type *sub : t->subtypes()) {
        const TypeInfo &s = memo_[sub];
        if (s.depth == kInProgress || s.depth == kCycle) {
          childDepth = kCycle;
        } else if (childDepth != kCycle && s.depth > childDepth) {
          childDepth = s.depth;
        }
        info.maxInt = std::max(info.maxInt, s.maxInt);
        info.scalable |= s.scalable;
      }
      info.depth = childDepth == kCycle ? kCycle : childDepth + 1;
      if (auto *it = dyn_cast<IntegerType>(t)) info.maxInt = std::max(info.maxInt, it->getBitWidth());
      if (isa<ScalableVectorType>(t)) info.scalable = true;
      if (auto *at = dyn_cast<ArrayType>(t)) {
        const TypeInfo &e = memo_[at->getElementType()];
        info.bytes = satMul(at->getNumElements(), e.bytes);
        info.scalars = satMul(at->getNumElements(), e.scalars);
      } else if (auto *st = dyn_cast<StructType>(t)) {
        for (Type *e : st->elements()) {
          info.bytes = satAdd(info.bytes, memo_[e].bytes);
          info.scalars = satAdd(info.scalars, memo_[e].scalars);
        }
      } else if (auto *vt = dyn_cast<VectorType>(t)) {
        const TypeInfo &e = memo_[vt->getElementType()];
        uint64_t n = vt->getElementCount().getKnownMinValue();
        info.bytes = satMul(n, e.bytes);
        info.scalars = satMul(n, 1);
      } else if (auto *it = dyn_cast<IntegerType>(t)) {
        info.bytes = (uint64_t(it->getBitWidth()) + 7) / 8;
        info.scalars = 1;
      } else if (t->isFunctionTy() || t->isVoidTy() || t->isLabelTy() || t->isMetadataTy() ||
                 t->isTokenTy()) {
        info.scalars = 0;
      } else if (t->isSized()) {
        info.bytes = dl_.getTypeAllocSize(t).getKnownMinValue();
        info.scalars = 1;
      }
      memo_[t] = info;
    }
    return memo_[root];
  }

 private:
  const DataLayout &dl_;
  DenseMap<Type *, TypeInfo> memo_;
};

// Depth of constant-expression / constant-aggregate nesting, not entering other globals.
class ConstantMeasure {
 public:
  uint64_t depth(const Constant *root) {
    if (isa<GlobalValue>(root)) return 0;
    auto found = memo_.find(root);
    if (found != memo_.end()) return found->second;
    SmallVector<std::pair<const Constant *, bool>, 32> stack;
    stack.push_back({root, false});
    while (!stack.empty()) {
      auto [c, post] = stack.pop_back_val();
      if (!post) {
        if (memo_.count(c)) continue;
        memo_[c] = kInProgress;
        stack.push_back({c, true});
        for (const Use &op : c->operands())
          if (auto *oc = dyn_cast<Constant>(op.get()))
            if (!isa<GlobalValue>(oc) && !memo_.count(oc)) stack.push_back({oc, false});
        continue;
      }
      uint64_t d = 0;
      for (const Use &op : c->operands())
        if (auto *oc = dyn_cast<Constant>(op.get()))
          if (!isa<GlobalValue>(oc)) d = std::max(d, memo_[oc] == kInProgress ? kCycle - 1 : memo_[oc]);
      memo_[c] = d >= kCycle - 1 ? kCycle - 1 : d + 1;
    }
    return memo_[root];
  }

 private:
  DenseMap<const Constant *, uint64_t> memo_;
};

struct Emitter {
  FactFn fn;
  void *ctx;
  void operator()(FactKind kind, StringRef function, StringRef detail, uint64_t value) const {
    std::string f = function.str(), d = detail.str();
    fn(ctx, kind, f.c_str(), d.c_str(), value);
  }
};

// The base type of a debug type (derived types' and composite types' `baseType:`), or null.
const Metadata *baseTypeOf(const Metadata *md) {
  if (auto *d = dyn_cast<DIDerivedType>(md)) return d->getRawBaseType();
  if (auto *c = dyn_cast<DICompositeType>(md)) return c->getRawBaseType();
  return nullptr;
}

// Walks every metadata node reachable from the module and reports each debug type whose `baseType:` chain
// returns to a node already on the chain (code generation follows such chains without a bound).
void debugTypeCycles(Module &m, const Emitter &emit) {
  SmallVector<const Metadata *, 64> work;
  DenseSet<const Metadata *> seen;
  auto push = [&](const Metadata *md) {
    if (md != nullptr && seen.insert(md).second) work.push_back(md);
  };
  for (const NamedMDNode &n : m.named_metadata())
    for (const MDNode *op : n.operands()) push(op);
  SmallVector<std::pair<unsigned, MDNode *>, 8> attached;
  for (GlobalObject &go : m.global_objects()) {
    attached.clear();
    go.getAllMetadata(attached);
    for (auto &a : attached) push(a.second);
    auto *f = dyn_cast<Function>(&go);
    if (f == nullptr) continue;
    for (BasicBlock &bb : *f)
      for (Instruction &i : bb) {
        attached.clear();
        i.getAllMetadata(attached);
        for (auto &a : attached) push(a.second);
        for (DbgVariableRecord &r : filterDbgVars(i.getDbgRecordRange())) {
          push(r.getRawVariable());
          push(r.getRawExpression());
          push(r.getDebugLoc().getAsMDNode());
        }
        for (const Use &op : i.operands())
          if (auto *mav = dyn_cast<MetadataAsValue>(op.get())) push(mav->getMetadata());
      }
  }
  DenseSet<const Metadata *> acyclic;
  while (!work.empty()) {
    const Metadata *md = work.pop_back_val();
    if (auto *node = dyn_cast<MDNode>(md))
      for (const MDOperand &op : node->operands()) push(op.get());
    if (baseTypeOf(md) == nullptr || acyclic.count(md)) continue;
    SmallVector<const Metadata *, 16> chain;
    DenseSet<const Metadata *> onChain;
    const Metadata *cur = md;
    bool cycle = false;
    while (cur != nullptr && !acyclic.count(cur)) {
      if (!onChain.insert(cur).second) {
        cycle = true;
        break;
      }
      chain.push_back(cur);
      cur = baseTypeOf(cur);
    }
    if (cycle) {
      StringRef name;
      if (auto *t = dyn_cast<DIType>(cur)) name = t->getName();
      emit(FactKind::DebugTypeCycle, "", name.empty() ? StringRef("<unnamed>") : name, 0);
      // Report each cycle once; its members need no further walking.
      for (const Metadata *c : chain) acyclic.insert(c);
      continue;
    }
    for (const Metadata *c : chain) acyclic.insert(c);
  }
}

// Cookie tags put on inline asm calls by `thinjit_tag_inline_asm`: 1 + the function's index, in the high word.
constexpr uint64_t kCookieBase = uint64_t(0x7417) << 48;

const char *diagnosticFunction(const DiagnosticInfo &di, const Module *module) {
  if (auto *u = dyn_cast<DiagnosticInfoUnsupported>(&di)) return u->getFunction().getName().data();
  if (auto *r = dyn_cast<DiagnosticInfoResourceLimit>(&di)) return r->getFunction().getName().data();
  if (auto *a = dyn_cast<DiagnosticInfoInlineAsm>(&di)) {
    if (const Instruction *i = a->getInstruction()) return i->getFunction()->getName().data();
  }
  uint64_t cookie = 0;
  if (auto *s = dyn_cast<DiagnosticInfoSrcMgr>(&di)) cookie = s->getLocCookie();
  if (auto *a = dyn_cast<DiagnosticInfoInlineAsm>(&di)) cookie = a->getLocCookie();
  if (module != nullptr && (cookie & (uint64_t(0xffff) << 48)) == kCookieBase) {
    uint64_t index = (cookie & 0xffffffffffffULL) - 1, n = 0;
    for (const Function &f : *module)
      if (n++ == index) return f.getName().data();
  }
  return nullptr;
}

// Records error-severity diagnostics (with the function LLVM names, or the inline-asm cookie's function).
struct RecordingHandler final : DiagnosticHandler {
  std::vector<std::pair<std::string, std::string>> errors;  // (function, message)
  const Module *module = nullptr;
  bool handleDiagnostics(const DiagnosticInfo &di) override {
    if (di.getSeverity() != DS_Error) return true;
    std::string text;
    raw_string_ostream os(text);
    DiagnosticPrinterRawOStream printer(os);
    di.print(printer);
    os.flush();
    const char *fn = diagnosticFunction(di, module);
    errors.emplace_back(fn ? fn : "", text);
    return true;
  }
};

}  // namespace

extern "C" {

// Gap: llvm-c exposes a module's types and constants one call at a time and only recursively. Measures the
// deepest type and constant nesting of `m` without recursion; out[0] = type depth (UINT64_MAX if a type contains
// itself), out[1] = constant depth.
void thinjit_module_nesting(LLVMModuleRef m, uint64_t *out) {
  Module *mod = unwrap(m);
  TypeMeasure types(mod->getDataLayout());
  ConstantMeasure constants;
  uint64_t typeDepth = 0, constDepth = 0;
  auto type = [&](Type *t) { typeDepth = std::max(typeDepth, types.measure(t).depth); };
  auto value = [&](const Value *v) {
    type(v->getType());
    if (auto *c = dyn_cast<Constant>(v)) constDepth = std::max(constDepth, constants.depth(c));
  };
  for (GlobalVariable &g : mod->globals()) {
    type(g.getValueType());
    if (g.hasInitializer()) value(g.getInitializer());
  }
  for (Function &f : *mod) {
    type(f.getFunctionType());
    for (BasicBlock &bb : f)
      for (Instruction &i : bb) {
        type(i.getType());
        if (auto *a = dyn_cast<AllocaInst>(&i)) type(a->getAllocatedType());
        if (auto *g = dyn_cast<GetElementPtrInst>(&i)) type(g->getSourceElementType());
        for (const Use &op : i.operands()) value(op.get());
      }
  }
  out[0] = typeDepth;
  out[1] = constDepth;
}

// Gap: llvm-c cannot answer "what in this module could a code generator refuse?". Reports, through `emit`, the
// facts src/check.rs judges (see FactKind). Call only on a module whose nesting `thinjit_module_nesting` accepted.
void thinjit_module_facts(LLVMModuleRef m, FactFn fn, void *ctx) {
  Module *mod = unwrap(m);
  Emitter emit{fn, ctx};
  TypeMeasure types(mod->getDataLayout());
  ConstantMeasure constants;
  struct Max {
    uint64_t value = 0;
    std::string where;
    void see(uint64_t v, StringRef w) {
      if (v > value) value = v, where = w.str();
    }
  } maxInt, maxAgg, maxSize;
  DenseSet<std::pair<const Function *, const Function *>> calls;
  DenseSet<const Function *> scalable;
  auto type = [&](Type *t, StringRef where, const Function *f, bool ssaValue) {
    const TypeInfo &info = types.measure(t);
    maxInt.see(info.maxInt, where);
    maxSize.see(info.bytes, where);
    if (ssaValue && (t->isAggregateType() || t->isVectorTy())) maxAgg.see(info.scalars, where);
    if (info.scalable && scalable.insert(f).second) emit(FactKind::ScalableVector, where, "", 0);
  };
  for (GlobalVariable &g : mod->globals()) {
    type(g.getValueType(), g.getName(), nullptr, false);
    if (g.isThreadLocal()) emit(FactKind::ThreadLocal, "", g.getName(), g.isDeclaration() ? 1 : 0);
  }
  for (Function &f : *mod) {
    if (f.getName().starts_with("llvm.")) emit(FactKind::Intrinsic, "", f.getName(), f.isIntrinsic() ? 1 : 0);
    for (Type *p : f.getFunctionType()->params()) type(p, f.getName(), &f, true);
    type(f.getReturnType(), f.getName(), &f, true);
    if (f.isDeclaration()) continue;
    if (f.hasGC()) emit(FactKind::Gc, f.getName(), f.getGC(), 0);
    if (f.isPresplitCoroutine()) emit(FactKind::Coroutine, f.getName(), "", 0);
    Attribute cpu = f.getFnAttribute("target-cpu");
    if (cpu.isValid()) emit(FactKind::TargetCpu, f.getName(), cpu.getValueAsString(), 0);
    Attribute features = f.getFnAttribute("target-features");
    if (features.isValid()) emit(FactKind::TargetFeatures, f.getName(), features.getValueAsString(), 0);
    for (BasicBlock &bb : f)
      for (Instruction &i : bb) {
        type(i.getType(), f.getName(), &f, true);
        if (auto *a = dyn_cast<AllocaInst>(&i)) type(a->getAllocatedType(), f.getName(), &f, false);
        for (const Use &op : i.operands()) type(op->getType(), f.getName(), &f, true);
        if (auto *call = dyn_cast<CallBase>(&i))
          if (Function *callee = call->getCalledFunction()) {
            if (callee->getName().starts_with("llvm.") && calls.insert({&f, callee}).second)
              emit(FactKind::IntrinsicCall, f.getName(), callee->getName(), 0);
            StringRef cn = callee->getName();
            if ((cn.starts_with("llvm.read_register.") || cn.starts_with("llvm.read_volatile_register.") ||
                 cn.starts_with("llvm.write_register.")) &&
                call->arg_size() >= 1) {
              std::string reg = "<not a register name>";
              if (auto *mv = dyn_cast<MetadataAsValue>(call->getArgOperand(0)))
                if (auto *node = dyn_cast<MDNode>(mv->getMetadata()))
                  if (node->getNumOperands() == 1)
                    if (auto *str = dyn_cast<MDString>(node->getOperand(0))) reg = str->getString().str();
              Type *value = cn.starts_with("llvm.write_register.") && call->arg_size() >= 2
                                ? call->getArgOperand(1)->getType()
                                : call->getType();
              emit(FactKind::NamedRegister, f.getName(), (cn + " " + reg).str(),
                   value->isIntegerTy() ? value->getIntegerBitWidth() : 0);
            }
            if (callee->getName().starts_with("llvm.x86."))
              for (unsigned k = 0; k < call->arg_size(); ++k)
                if (callee->hasParamAttribute(k, Attribute::ImmArg))
                  if (auto *c = dyn_cast<ConstantInt>(call->getArgOperand(k)))
                    if (c->getBitWidth() <= 64)
                      emit(FactKind::Immediate, f.getName(), callee->getName(),
                           (uint64_t(k) << 32) | uint32_t(c->getZExtValue()));
          }
      }
  }
  emit(FactKind::IntWidth, maxInt.where, "", maxInt.value);
  emit(FactKind::AggregateValue, maxAgg.where, "", maxAgg.value);
  emit(FactKind::TypeSize, maxSize.where, "", maxSize.value);
  debugTypeCycles(*mod, emit);
}

// Gap: llvm-c has no MCSubtargetInfo. 1 if `triple` knows `cpu` (empty: the generic CPU), 0 if not, -1 if the
// triple names no registered target.
int thinjit_target_cpu_valid(const char *triple, const char *cpu) {
  std::string err;
  const Target *t = TargetRegistry::lookupTarget(triple, err);
  if (t == nullptr) return -1;
  std::unique_ptr<MCSubtargetInfo> sti(t->createMCSubtargetInfo(triple, "", ""));
  if (!sti) return -1;
  return (cpu[0] == '\0' || sti->isCPUStringValid(cpu)) ? 1 : 0;
}

// 1 if `feature` (no sign) is a feature of `triple`'s target, 0 if not, -1 if the triple names no target.
int thinjit_target_feature_valid(const char *triple, const char *feature) {
  std::string err;
  const Target *t = TargetRegistry::lookupTarget(triple, err);
  if (t == nullptr) return -1;
  std::unique_ptr<MCSubtargetInfo> sti(t->createMCSubtargetInfo(triple, "", ""));
  if (!sti) return -1;
  for (const SubtargetFeatureKV &kv : sti->getAllProcessorFeatures())
    if (StringRef(kv.Key) == feature) return 1;
  return 0;
}

// 1 if a subtarget (`cpu`, `features`, both already validated) of `triple` has `feature` (no sign), 0 if not,
// -1 if the triple names no target.
int thinjit_target_has_feature(const char *triple, const char *cpu, const char *features, const char *feature) {
  std::string err;
  const Target *t = TargetRegistry::lookupTarget(triple, err);
  if (t == nullptr) return -1;
  std::unique_ptr<MCSubtargetInfo> sti(t->createMCSubtargetInfo(triple, cpu, features));
  if (!sti) return -1;
  return sti->checkFeatures(std::string("+") + feature) ? 1 : 0;
}

// Gap: llvm-c cannot list GC strategies, and LLVM's own lookup ends the process on an unknown name. 1 if
// `name` is registered.
int thinjit_gc_strategy_known(const char *name) {
  for (const auto &entry : GCRegistry::entries())
    if (entry.getName() == name) return 1;
  return 0;
}

// Gap: an error diagnostic from the inline-asm parser names no function (only a `!srcloc` cookie). Gives every
// inline asm call without `!srcloc` a cookie naming its function, so `thinjit_diagnostic_function` can.
void thinjit_tag_inline_asm(LLVMModuleRef m) {
  Module *mod = unwrap(m);
  LLVMContext &ctx = mod->getContext();
  unsigned kind = ctx.getMDKindID("srcloc");
  uint64_t index = 0;
  for (Function &f : *mod) {
    ++index;
    for (BasicBlock &bb : f)
      for (Instruction &i : bb) {
        auto *call = dyn_cast<CallBase>(&i);
        if (call == nullptr || !call->isInlineAsm() || i.getMetadata(kind) != nullptr) continue;
        Metadata *cookie = ConstantAsMetadata::get(ConstantInt::get(Type::getInt64Ty(ctx), kCookieBase | index));
        i.setMetadata(kind, MDNode::get(ctx, cookie));
      }
  }
}

// Gap: llvm-c's diagnostic info gives only text. The name of the function an error diagnostic is about (owned by
// the module; copy it during the callback), or null when LLVM did not say. `module` may be null.
const char *thinjit_diagnostic_function(LLVMDiagnosticInfoRef info, LLVMModuleRef module) {
  return diagnosticFunction(*unwrap(info), module ? unwrap(module) : nullptr);
}

// Reports a code generation failure of a module ORC compiled: (ctx, module identity, module name, function or
// "", message).
using CodegenErrorFn = void (*)(void *ctx, uintptr_t module, const char *name, const char *function,
                                const char *message);

}  // extern "C"

namespace {

// ORC's IR compiler with error diagnostics as failures: records them during code generation and fails the
// materialization instead of handing on an object compiled from code the backend said it could not compile
// (and instead of LLVM's default handler, which exits the process on an error diagnostic). One target machine
// compiles every module, and a TargetMachine is not thread-safe, so compilations are serialized: several threads
// may look up (and so materialize) lazily added IR at once through a `Sync` LlJit.
class CheckedCompiler final : public orc::IRCompileLayer::IRCompiler {
 public:
  CheckedCompiler(std::unique_ptr<TargetMachine> tm, CodegenErrorFn fn, std::shared_ptr<void> ctx)
      : IRCompiler(orc::irManglingOptionsFromTargetOptions(tm->Options)),
        tm_(std::move(tm)),
        fn_(fn),
        ctx_(std::move(ctx)) {}

  Expected<std::unique_ptr<MemoryBuffer>> operator()(Module &m) override {
    // One target machine: an LLJIT with compile threads calls this from several at once.
    std::lock_guard<std::mutex> lock(mutex_);
    thinjit_tag_inline_asm(wrap(&m));
    LLVMContext &context = m.getContext();
    std::unique_ptr<DiagnosticHandler> previous = context.getDiagnosticHandler();
    auto recorder = std::make_unique<RecordingHandler>();
    RecordingHandler *recorded = recorder.get();
    recorded->module = &m;
    context.setDiagnosticHandler(std::move(recorder));
    auto object = orc::SimpleCompiler(*tm_)(m);
    std::unique_ptr<DiagnosticHandler> mine = context.getDiagnosticHandler();
    context.setDiagnosticHandler(std::move(previous));
    if (recorded->errors.empty()) return object;
    if (!object) consumeError(object.takeError());
    std::string all;
    for (auto &[function, message] : recorded->errors) {
      fn_(ctx_.get(), reinterpret_cast<uintptr_t>(&m), m.getModuleIdentifier().c_str(), function.c_str(),
          message.c_str());
      if (!all.empty()) all += "; ";
      all += message;
    }
    return make_error<StringError>("code generation of " + m.getModuleIdentifier() + " failed: " + all,
                                   inconvertibleErrorCode());
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<TargetMachine> tm_;
  CodegenErrorFn fn_;
  std::shared_ptr<void> ctx_;
};

}  // namespace

extern "C" {

// Gap: llvm-c's LLJIT compiles IR with a compiler that ignores error diagnostics. Makes the builder's LLJIT
// compile through `CheckedCompiler`, reporting each failure to `fn(ctx, ...)`. `release` (may be null) is
// called with `ctx` once neither the builder nor the LLJIT refers to it any more; without one, `ctx` must
// outlive the LLJIT.
void thinjit_lljit_builder_install_checked_compiler(LLVMOrcLLJITBuilderRef builder, CodegenErrorFn fn, void *ctx,
                                                void (*release)(void *)) {
  std::shared_ptr<void> owned(ctx, [release](void *p) {
    if (release != nullptr) release(p);
  });
  reinterpret_cast<orc::LLJITBuilder *>(builder)->setCompileFunctionCreator(
      [fn, owned](orc::JITTargetMachineBuilder jtmb)
          -> Expected<std::unique_ptr<orc::IRCompileLayer::IRCompiler>> {
        auto tm = jtmb.createTargetMachine();
        if (!tm) return tm.takeError();
        return std::make_unique<CheckedCompiler>(std::move(*tm), fn, owned);
      });
}

}  // extern "C"

extern "C" {

// Gap: llvm-c's LLJIT lookup returns an address without the symbol's flags. Looks `name` up in the main
// JITDylib like LLVMOrcLLJITLookup and also says whether ORC knows it as callable (a function, not data).
LLVMErrorRef thinjit_lljit_lookup_flags(LLVMOrcLLJITRef jit, const char *name, uint64_t *address, int *callable) {
  auto &j = *reinterpret_cast<orc::LLJIT *>(jit);
  auto &es = j.getExecutionSession();
  auto symbol = es.lookup(orc::makeJITDylibSearchOrder(&j.getMainJITDylib(), orc::JITDylibLookupFlags::MatchAllSymbols),
                          es.intern(name));
  if (!symbol) return wrap(symbol.takeError());
  *address = symbol->getAddress().getValue();
  *callable = symbol->getFlags().isCallable() ? 1 : 0;
  // Symbols found in the host's shared libraries carry no Callable flag (DynamicLibrarySearchGenerator marks
  // them Exported only): ask the dynamic linker for the ELF symbol's type instead.
  Dl_info info;
  const ElfW(Sym) *sym = nullptr;
  if (*callable == 0 &&
      dladdr1(reinterpret_cast<void *>(*address), &info, const_cast<void **>(reinterpret_cast<const void **>(&sym)), RTLD_DL_SYMENT) != 0 &&
      sym != nullptr && info.dli_saddr == reinterpret_cast<void *>(*address)) {
    unsigned type = ELF64_ST_TYPE(sym->st_info);
    *callable = (type == STT_FUNC || type == STT_GNU_IFUNC) ? 1 : 0;
  }
  return nullptr;
}

}  // extern "C"
