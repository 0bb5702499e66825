// thinjit's C++ shim, part 4: LLVM's own lists of intrinsics, target CPUs and target features. The C API can
// name an intrinsic by ID but cannot tell its overloads' type constraints, which parameters must be immediates,
// or which CPUs and features a target has. Used by the script fuzzer (random calls to every intrinsic) and by
// the generator of the x86 intrinsic feature table (src/check/x86_intrinsic_features.rs); thinjit's own
// compilation path does not call these.

#include "llvm/IR/Attributes.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

using namespace llvm;

namespace {

std::string typeText(Type *t) {
  std::string s;
  raw_string_ostream os(s);
  t->print(os);
  os.flush();
  return s;
}

// Requirements that later descriptors put on an overload slot (getType would cast without checking).
struct SlotNeeds {
  bool defined = false;
  unsigned kind = 0;       // IITDescriptor::ArgKind of the defining descriptor
  bool vector = false;     // VecElement, HalfVec, Subdivide, VecOfBitcastsToInt use it as a vector
  bool integer = false;    // Extend/Trunc use it as an integer (or integer vector)
  bool subdivide = false;  // Subdivide2/4: an integer vector whose elements can be split
  bool ptrVec = false;     // VecOfAnyPtrsToElt: a vector of pointers shaped like slot `ref`
  unsigned ref = 0;
};

// Candidate types for one slot; `pick` chooses among them.
Type *chooseType(LLVMContext &c, const SlotNeeds &n, unsigned pick, const std::vector<Type *> &chosen) {
  Type *i8 = Type::getInt8Ty(c), *i16 = Type::getInt16Ty(c), *i32 = Type::getInt32Ty(c),
       *i64 = Type::getInt64Ty(c), *f32 = Type::getFloatTy(c), *f64 = Type::getDoubleTy(c);
  Type *ptr = PointerType::get(c, 0);
  auto vec = [](Type *e, unsigned n) -> Type * { return FixedVectorType::get(e, n); };
  std::vector<Type *> pool;
  if (n.ptrVec) {
    if (n.ref >= chosen.size() || chosen[n.ref] == nullptr || !chosen[n.ref]->isVectorTy()) return nullptr;
    return VectorType::get(ptr, cast<VectorType>(chosen[n.ref])->getElementCount());
  }
  if (n.subdivide) {
    pool = {vec(i32, 4), vec(i64, 2), vec(i32, 8)};
  } else if (n.integer) {
    pool = n.vector ? std::vector<Type *>{vec(i32, 4), vec(i16, 8), vec(i64, 2)}
                    : std::vector<Type *>{i32, i64, i16, vec(i32, 4), vec(i16, 8)};
  } else {
    switch (n.kind) {
      case Intrinsic::IITDescriptor::AK_AnyInteger:
        pool = n.vector ? std::vector<Type *>{vec(i32, 4), vec(i8, 16), vec(i64, 2), vec(i16, 8)}
                        : std::vector<Type *>{i32, i64, i16, vec(i32, 4), i8, vec(i8, 16), Type::getInt128Ty(c),
                                              vec(i64, 2)};
        break;
      case Intrinsic::IITDescriptor::AK_AnyFloat:
        pool = n.vector ? std::vector<Type *>{vec(f32, 4), vec(f64, 2), vec(f32, 8)}
                        : std::vector<Type *>{f32, f64, vec(f32, 4), vec(f64, 2), Type::getHalfTy(c)};
        break;
      case Intrinsic::IITDescriptor::AK_AnyVector:
        pool = {vec(i32, 4), vec(f32, 4), vec(i64, 2), vec(i16, 8), vec(f64, 2), vec(i8, 16),
                ScalableVectorType::get(i32, 4)};
        break;
      case Intrinsic::IITDescriptor::AK_AnyPointer:
        pool = {ptr, PointerType::get(c, 1)};
        break;
      default:
        pool = n.vector ? std::vector<Type *>{vec(i32, 4), vec(f32, 4), vec(i64, 2)}
                        : std::vector<Type *>{i32, i64, f32, vec(i32, 4), f64, ptr, vec(f32, 4)};
    }
  }
  return pool[pick % pool.size()];
}

}  // namespace

extern "C" {

// One intrinsic: (ctx, ID, name (mangled with its overload types), base name, 1 if overloaded, return type, parameter
// count, parameter types, 1 per parameter that must be an immediate (`immarg`), 1 if variadic, and a reason
// when no signature could be chosen (then the types are empty)).
using IntrinsicFn = void (*)(void *ctx, unsigned id, const char *name, const char *base, int overloaded,
                             const char *ret,
                             unsigned nparams, const char *const *params, const uint8_t *immarg, int vararg,
                             const char *skipped);

// Gap: llvm-c has no way to enumerate intrinsics with callable signatures. Reports every intrinsic LLVM knows
// (IDs 1 .. num_intrinsics - 1) with one concrete signature; `variant` chooses among candidate overload types.
void thinjit_intrinsic_catalog(unsigned variant, IntrinsicFn fn, void *ctx) {
  LLVMContext context;
  Module scratch("thinjit-intrinsics", context);
  for (unsigned id = 1; id < Intrinsic::num_intrinsics; ++id) {
    auto iid = static_cast<Intrinsic::ID>(id);
    bool overloaded = Intrinsic::isOverloaded(iid);
    SmallVector<Intrinsic::IITDescriptor, 16> table;
    Intrinsic::getIntrinsicInfoTableEntries(iid, table);
    std::vector<SlotNeeds> slots;
    auto slot = [&](unsigned i) -> SlotNeeds & {
      if (i >= slots.size()) slots.resize(i + 1);
      return slots[i];
    };
    std::string skipped;
    for (const auto &d : table) {
      using D = Intrinsic::IITDescriptor;
      switch (d.Kind) {
        case D::Argument:
          if (d.getArgumentKind() != D::AK_MatchType) {
            slot(d.getArgumentNumber()).defined = true;
            slot(d.getArgumentNumber()).kind = d.getArgumentKind();
          }
          break;
        case D::ExtendArgument:
        case D::TruncArgument:
          slot(d.getArgumentNumber()).integer = true;
          break;
        case D::Subdivide2Argument:
        case D::Subdivide4Argument:
          slot(d.getArgumentNumber()).subdivide = true;
          slot(d.getArgumentNumber()).vector = true;
          break;
        case D::HalfVecArgument:
        case D::VecElementArgument:
        case D::VecOfBitcastsToInt:
          slot(d.getArgumentNumber()).vector = true;
          break;
        case D::VecOfAnyPtrsToElt:
          slot(d.getOverloadArgNumber()).defined = true;
          slot(d.getOverloadArgNumber()).ptrVec = true;
          slot(d.getOverloadArgNumber()).ref = d.getRefArgNumber();
          break;
        default:
          break;
      }
    }
    std::vector<Type *> tys;
    for (unsigned i = 0; i < slots.size() && skipped.empty(); ++i) {
      if (!slots[i].defined) {
        skipped = "overload slot without a defining type";
        break;
      }
      Type *t = chooseType(context, slots[i], variant + i, tys);
      if (t == nullptr) skipped = "vector-of-pointers slot without a vector to follow";
      tys.push_back(t);
    }
    const std::string base = Intrinsic::getBaseName(iid).str();
    std::string name = base;
    if (!skipped.empty()) {
      fn(ctx, id, name.c_str(), base.c_str(), overloaded, "", 0, nullptr, nullptr, 0, skipped.c_str());
      continue;
    }
    FunctionType *ft = Intrinsic::getType(context, iid, tys);
    SmallVector<Type *, 4> matched;
    if (!Intrinsic::getIntrinsicSignature(iid, ft, matched)) {
      fn(ctx, id, name.c_str(), base.c_str(), overloaded, "", 0, nullptr, nullptr, 0, "chosen overload types do not match");
      continue;
    }
    name = overloaded ? Intrinsic::getName(iid, tys, &scratch, ft) : Intrinsic::getName(iid).str();
    AttributeList attrs = Intrinsic::getAttributes(context, iid);
    std::vector<std::string> params;
    std::vector<const char *> ptrs;
    std::vector<uint8_t> imm;
    for (unsigned i = 0; i < ft->getNumParams(); ++i) {
      params.push_back(typeText(ft->getParamType(i)));
      imm.push_back(attrs.hasParamAttr(i, Attribute::ImmArg) ? 1 : 0);
    }
    for (const auto &p : params) ptrs.push_back(p.c_str());
    std::string ret = typeText(ft->getReturnType());
    fn(ctx, id, name.c_str(), base.c_str(), overloaded, ret.c_str(), static_cast<unsigned>(params.size()), ptrs.data(),
       imm.data(), ft->isVarArg() ? 1 : 0, "");
  }
}

// Gap: llvm-c cannot list a target's CPUs or features. Reports each name (`cpus` 1: CPUs, 0: features) of
// `triple`'s target; returns -1 if the triple names no registered target (targets not initialized here are
// unknown), else 0.
int thinjit_target_names(const char *triple, int cpus, void (*fn)(void *ctx, const char *name), void *ctx) {
  std::string err;
  const Target *t = TargetRegistry::lookupTarget(triple, err);
  if (t == nullptr) return -1;
  std::unique_ptr<MCSubtargetInfo> sti(t->createMCSubtargetInfo(triple, "", ""));
  if (!sti) return -1;
  if (cpus != 0) {
    for (const SubtargetSubTypeKV &kv : sti->getAllProcessorDescriptions()) fn(ctx, kv.Key);
  } else {
    for (const SubtargetFeatureKV &kv : sti->getAllProcessorFeatures()) fn(ctx, kv.Key);
  }
  return 0;
}

}  // extern "C"
